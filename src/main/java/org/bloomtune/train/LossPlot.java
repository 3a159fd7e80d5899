package org.bloomtune.train;

import com.google.gson.JsonObject;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/**
 * loss.png: the training loss per step (faint), its moving average (bold), and the eval loss as
 * marked points. The y-axis spans the data, not zero to the top: a prompt-tuning run often moves
 * the loss by a few hundredths, which an axis from zero would flatten into a line.
 */
final class LossPlot {
    private LossPlot() {}

    static void write(Path png, List<JsonObject> metrics) {
        try {
            ChartUtils.saveChartAsPNG(png.toFile(), chart(metrics), 800, 500);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + png + ": " + e.getMessage(), e);
        }
    }

    /** The chart of {@code metrics}: series 0 the raw train loss, 1 its moving average, 2 the eval loss. */
    static JFreeChart chart(List<JsonObject> metrics) {
        System.setProperty("java.awt.headless", "true");
        XYSeries train = new XYSeries("train loss");
        XYSeries eval = new XYSeries("eval loss");
        for (JsonObject m : metrics) {
            if (m.has("loss")) train.add(m.get("step").getAsDouble(), m.get("loss").getAsDouble());
            if (m.has("eval_loss") && Double.isFinite(m.get("eval_loss").getAsDouble())) {
                eval.add(m.get("step").getAsDouble(), m.get("eval_loss").getAsDouble());
            }
        }
        XYSeriesCollection data = new XYSeriesCollection(train);
        data.addSeries(smoothed(train));
        data.addSeries(eval);
        JFreeChart chart = ChartFactory.createXYLineChart("Prompt tuning", "optimizer step", "loss", data,
                PlotOrientation.VERTICAL, true, false, false);
        style(chart.getXYPlot());
        return chart;
    }

    /** Moving average over a window of about a twentieth of the run (at least 1 step). */
    static XYSeries smoothed(XYSeries raw) {
        XYSeries out = new XYSeries("train loss (moving average)");
        int n = raw.getItemCount();
        int window = Math.max(1, n / 20);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += raw.getY(i).doubleValue();
            if (i >= window) sum -= raw.getY(i - window).doubleValue();
            out.add(raw.getX(i), sum / Math.min(i + 1, window));
        }
        return out;
    }

    private static void style(XYPlot plot) {
        NumberAxis y = (NumberAxis) plot.getRangeAxis();
        y.setAutoRangeIncludesZero(false);
        XYLineAndShapeRenderer r = new XYLineAndShapeRenderer();
        r.setSeriesPaint(0, new Color(70, 130, 180, 90));          // raw train loss: faint
        r.setSeriesShapesVisible(0, false);
        r.setSeriesPaint(1, new Color(20, 60, 140));                // its moving average: bold
        r.setSeriesStroke(1, new BasicStroke(2.5f));
        r.setSeriesShapesVisible(1, false);
        r.setSeriesPaint(2, new Color(220, 90, 30));               // eval: marked points, joined
        r.setSeriesShapesVisible(2, true);
        r.setSeriesStroke(2, new BasicStroke(1.5f));
        plot.setRenderer(r);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    }
}
