package org.bloomtune.serve;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;

/**
 * Counters, gauges and histograms of a running server, rendered in Prometheus' text format
 * (version 0.0.4) for {@code GET /metrics}. Series are created on first use; labels are given as
 * name, value pairs. Thread-safe.
 */
public final class ServerMetrics {
    private sealed interface Family permits Counter, Gauge, Histogram {
        String help();
    }

    private record Counter(String help, Map<String, LongAdder> series) implements Family {}

    private record Gauge(String help, LongSupplier value) implements Family {}

    private record Histogram(String help, double[] buckets, Map<String, Series> series) implements Family {}

    private static final class Series {
        final LongAdder[] counts;
        final DoubleAdder sum = new DoubleAdder();
        final LongAdder count = new LongAdder();

        Series(int buckets) {
            counts = new LongAdder[buckets];
            for (int i = 0; i < buckets; i++) counts[i] = new LongAdder();
        }
    }

    private final Map<String, Family> families = new ConcurrentHashMap<>();

    public void count(String name, String help, String... labels) { count(name, help, 1, labels); }

    public void count(String name, String help, long amount, String... labels) {
        Family f = families.computeIfAbsent(name, n -> new Counter(help, new ConcurrentHashMap<>()));
        if (!(f instanceof Counter c)) throw new IllegalArgumentException(name + " is not a counter");
        c.series().computeIfAbsent(labels(labels), k -> new LongAdder()).add(amount);
    }

    /** A value read when the metrics are rendered. */
    public void gauge(String name, String help, LongSupplier value) {
        families.put(name, new Gauge(help, value));
    }

    /** Counts {@code value} in the first bucket whose upper bound holds it (cumulative, as Prometheus wants). */
    public void observe(String name, String help, double[] buckets, double value, String... labels) {
        Family f = families.computeIfAbsent(name, n -> new Histogram(help, buckets.clone(), new ConcurrentHashMap<>()));
        if (!(f instanceof Histogram h)) throw new IllegalArgumentException(name + " is not a histogram");
        Series s = h.series().computeIfAbsent(labels(labels), k -> new Series(h.buckets().length));
        for (int i = 0; i < h.buckets().length; i++) if (value <= h.buckets()[i]) s.counts[i].increment();
        s.sum.add(value);
        s.count.increment();
    }

    /** A counter's value for one label set (0 when never counted): for tests and reports. */
    public long counter(String name, String... labels) {
        if (!(families.get(name) instanceof Counter c)) return 0;
        LongAdder a = c.series().get(labels(labels));
        return a == null ? 0 : a.sum();
    }

    /** The Prometheus text exposition of every family, sorted by name. */
    public String render() {
        StringBuilder out = new StringBuilder();
        for (Map.Entry<String, Family> e : new TreeMap<>(families).entrySet()) {
            String name = e.getKey();
            Family f = e.getValue();
            out.append("# HELP ").append(name).append(' ').append(f.help()).append('\n');
            switch (f) {
                case Counter c -> {
                    out.append("# TYPE ").append(name).append(" counter\n");
                    new TreeMap<>(c.series()).forEach((labels, v) -> out.append(name).append(labels).append(' ').append(v.sum()).append('\n'));
                }
                case Gauge g -> out.append("# TYPE ").append(name).append(" gauge\n").append(name).append(' ').append(g.value().getAsLong()).append('\n');
                case Histogram h -> {
                    out.append("# TYPE ").append(name).append(" histogram\n");
                    new TreeMap<>(h.series()).forEach((labels, s) -> histogram(out, name, labels, h.buckets(), s));
                }
            }
        }
        return out.toString();
    }

    private static void histogram(StringBuilder out, String name, String labels, double[] buckets, Series s) {
        String inner = labels.isEmpty() ? "" : labels.substring(1, labels.length() - 1) + ",";
        for (int i = 0; i < buckets.length; i++) {
            out.append(name).append("_bucket{").append(inner).append("le=\"").append(number(buckets[i])).append("\"} ")
                    .append(s.counts[i].sum()).append('\n');
        }
        out.append(name).append("_bucket{").append(inner).append("le=\"+Inf\"} ").append(s.count.sum()).append('\n');
        out.append(name).append("_sum").append(labels).append(' ').append(number(s.sum.sum())).append('\n');
        out.append(name).append("_count").append(labels).append(' ').append(s.count.sum()).append('\n');
    }

    private static String number(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : String.format(Locale.ROOT, "%s", v);
    }

    /** {@code {a="x",b="y"}} from name, value pairs; values escaped as the format asks. */
    private static String labels(String... pairs) {
        if (pairs.length == 0) return "";
        if (pairs.length % 2 != 0) throw new IllegalArgumentException("labels come in name, value pairs");
        StringBuilder b = new StringBuilder("{");
        for (int i = 0; i < pairs.length; i += 2) {
            if (i > 0) b.append(',');
            b.append(pairs[i]).append("=\"").append(pairs[i + 1].replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")).append('"');
        }
        return b.append('}').toString();
    }
}
