package org.bloomtune.train;

import com.google.gson.JsonObject;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/** loss.png: training loss per step, and eval loss where measured (JFreeChart, headless). */
final class LossPlot {
    private LossPlot() {}

    static void write(Path png, List<JsonObject> metrics) {
        System.setProperty("java.awt.headless", "true");
        XYSeries train = new XYSeries("train loss");
        XYSeries eval = new XYSeries("eval loss");
        for (JsonObject m : metrics) {
            if (m.has("loss")) train.add(m.get("step").getAsDouble(), m.get("loss").getAsDouble());
            if (m.has("eval_loss")) eval.add(m.get("step").getAsDouble(), m.get("eval_loss").getAsDouble());
        }
        XYSeriesCollection data = new XYSeriesCollection(train);
        if (eval.getItemCount() > 0) data.addSeries(eval);
        JFreeChart chart = ChartFactory.createXYLineChart("Prompt tuning", "optimizer step", "loss", data,
                PlotOrientation.VERTICAL, true, false, false);
        try {
            ChartUtils.saveChartAsPNG(png.toFile(), chart, 800, 500);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + png + ": " + e.getMessage(), e);
        }
    }
}
