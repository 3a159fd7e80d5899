package org.bloomtune.train;

import com.google.gson.JsonObject;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYDataset;
import org.jfree.data.xy.XYSeries;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** loss.png shows a small improvement: the axis spans the data, eval points are marked, the train curve has a smoothed line. */
class LossPlotTest {

    @Test
    void axisFollowsTheDataAndEvalPointsAreMarked() {
        List<JsonObject> metrics = new ArrayList<>();
        metrics.add(eval(0, 4.132));
        java.util.Random r = new java.util.Random(1);
        for (int step = 1; step <= 200; step++) metrics.add(step(step, 4.12 - 0.05 * step / 200 + 0.02 * r.nextGaussian()));
        metrics.add(eval(200, 4.082));
        JFreeChart chart = LossPlot.chart(metrics);
        XYPlot plot = chart.getXYPlot();
        double lower = plot.getRangeAxis().getLowerBound();
        double upper = plot.getRangeAxis().getUpperBound();
        assertTrue(lower > 3.9 && upper < 4.3, "y-axis [" + lower + ", " + upper + "] should hug losses of about 4.0-4.2");
        XYDataset data = plot.getDataset();
        assertEquals(3, data.getSeriesCount());
        assertEquals(2, data.getItemCount(2), "both eval points");
        XYLineAndShapeRenderer renderer = (XYLineAndShapeRenderer) plot.getRenderer();
        assertTrue(renderer.getSeriesShapesVisible(2), "eval points are marked");
        // The moving average is smoother than the raw loss: its step-to-step changes are much smaller.
        assertTrue(roughness(data, 1) < 0.3 * roughness(data, 0), roughness(data, 1) + " vs " + roughness(data, 0));
    }

    @Test
    void movingAverageOfAConstantIsTheConstant() {
        XYSeries s = new XYSeries("x");
        for (int i = 0; i < 50; i++) s.add(i, 2.5);
        XYSeries m = LossPlot.smoothed(s);
        for (int i = 0; i < 50; i++) assertEquals(2.5, m.getY(i).doubleValue(), 1e-12);
    }

    private static double roughness(XYDataset d, int series) {
        double sum = 0;
        for (int i = 1; i < d.getItemCount(series); i++) sum += Math.abs(d.getYValue(series, i) - d.getYValue(series, i - 1));
        return sum;
    }

    private static JsonObject step(int step, double loss) {
        JsonObject o = new JsonObject();
        o.addProperty("step", step);
        o.addProperty("loss", loss);
        return o;
    }

    private static JsonObject eval(int step, double loss) {
        JsonObject o = new JsonObject();
        o.addProperty("step", step);
        o.addProperty("eval_loss", loss);
        return o;
    }
}
