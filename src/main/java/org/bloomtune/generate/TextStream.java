package org.bloomtune.generate;

import org.bloomtune.tokenizer.StreamingDecoder;
import org.bloomtune.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Generated tokens as text, row by row, while they come: special tokens skipped, incomplete UTF-8
 * held back until complete, and stop strings honoured — a row ends at the first stop string, which
 * is cut from its text (as OpenAI's {@code stop} does). Text that might still turn into a stop
 * string is held back too, so a streamed chunk never has to be taken back.
 */
public final class TextStream implements TokenListener {
    /** Receives each row's text as it becomes final. */
    @FunctionalInterface
    public interface Sink {
        void text(int row, String chunk);
    }

    private final List<String> stops;
    private final Sink sink;
    private final List<StreamingDecoder> decoders = new ArrayList<>();
    private final List<StringBuilder> texts = new ArrayList<>();
    private final List<Integer> emitted = new ArrayList<>();
    private final List<Boolean> stopped = new ArrayList<>();

    public TextStream(Tokenizer tokenizer, int rows, List<String> stops, Sink sink) {
        for (String s : stops) if (s.isEmpty()) throw new IllegalArgumentException("stop strings must not be empty");
        this.stops = List.copyOf(stops);
        this.sink = sink;
        for (int r = 0; r < rows; r++) {
            decoders.add(new StreamingDecoder(tokenizer, true));
            texts.add(new StringBuilder());
            emitted.add(0);
            stopped.add(false);
        }
    }

    @Override
    public void onToken(int row, long token) {
        if (stopped.get(row)) return;
        StringBuilder text = texts.get(row);
        int searchFrom = Math.max(0, emitted.get(row) - longestStop());
        text.append(decoders.get(row).push(token));
        int cut = firstStop(text, searchFrom);
        if (cut >= 0) {
            text.setLength(cut);
            stopped.set(row, true);
            flush(row, cut);
        } else {
            flush(row, text.length() - heldForStops(text));
        }
    }

    @Override
    public boolean stopRow(int row) { return stopped.get(row); }

    /** Ends every row: what was held back (an incomplete character, a partial stop string) goes out. */
    public void finish() {
        for (int r = 0; r < texts.size(); r++) {
            if (!stopped.get(r)) texts.get(r).append(decoders.get(r).finish());
            flush(r, texts.get(r).length());
        }
    }

    /** Row {@code row}'s text so far (complete after {@link #finish}). */
    public String text(int row) { return texts.get(row).toString(); }

    private void flush(int row, int upTo) {
        int from = emitted.get(row);
        if (upTo > from) {
            sink.text(row, texts.get(row).substring(from, upTo));
            emitted.set(row, upTo);
        }
    }

    private int firstStop(StringBuilder text, int from) {
        int best = -1;
        for (String s : stops) {
            int i = text.indexOf(s, from);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }

    /** Length of the longest end of {@code text} that is the start of a stop string. */
    private int heldForStops(StringBuilder text) {
        int held = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, text.length()); k > held; k--) {
                if (text.substring(text.length() - k).equals(s.substring(0, k))) {
                    held = k;
                    break;
                }
            }
        }
        return held;
    }

    private int longestStop() {
        return stops.stream().mapToInt(String::length).max().orElse(0);
    }
}
