package org.bloomtune.classify;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The model rows needed to score every label of a batch of patterned texts, and where to read
 * each label word's tokens. A causal LM predicts word token j at the position before it, so a row
 * is the pattern followed by all but the last token of a word; words that share those leading
 * tokens share a row — with single-token words, one row per text serves every label. Each text
 * may bring its own verbalizer (a mixed batch of tasks). Rows are right-padded; the batch owns
 * its two tensors.
 */
public final class VerbalizedBatch implements AutoCloseable {
    private final Tensor inputIds;            // [R, T]
    private final Tensor attentionMask;       // [R, T]
    private final long[] tokenRow;            // per scored token: its row,
    private final long[] tokenPos;            // the position that predicts it,
    private final long[] tokenId;             // and its id
    private final float[] average;            // [S, M]: label score s = Σ_m average[s, m] · log p(token m)
    private final int[] firstScore;           // per text: index of its first label score
    private final int[] numLabels;
    private final int[] textOfRow;

    private VerbalizedBatch(Tensor inputIds, Tensor attentionMask, long[] tokenRow, long[] tokenPos, long[] tokenId,
                            float[] average, int[] firstScore, int[] numLabels, int[] textOfRow) {
        this.inputIds = inputIds;
        this.attentionMask = attentionMask;
        this.tokenRow = tokenRow;
        this.tokenPos = tokenPos;
        this.tokenId = tokenId;
        this.average = average;
        this.firstScore = firstScore;
        this.numLabels = numLabels;
        this.textOfRow = textOfRow;
    }

    /** One label-word token to score: where it is predicted, and its share of its label's score. */
    private record ScoredToken(int row, long position, long id, int score, float weight) {}

    /** {@code patterns.get(n)} scored with the label words {@code words.get(n)}. */
    public static VerbalizedBatch of(List<long[]> patterns, List<LabelWords> words, long padId) {
        if (patterns.size() != words.size()) throw new IllegalArgumentException(patterns.size() + " texts but " + words.size() + " verbalizers");
        if (patterns.isEmpty()) throw new IllegalArgumentException("an empty batch");
        List<long[]> rows = new ArrayList<>();
        List<Integer> textOfRow = new ArrayList<>();
        List<ScoredToken> scored = new ArrayList<>();
        int[] firstScore = new int[patterns.size()];
        int[] numLabels = new int[patterns.size()];
        int scores = 0;
        for (int n = 0; n < patterns.size(); n++) {
            long[] pattern = patterns.get(n);
            LabelWords lw = words.get(n);
            Map<List<Long>, Integer> rowOfLead = new HashMap<>();
            int text = n;
            firstScore[n] = scores;
            numLabels[n] = lw.numLabels();
            for (int l = 0; l < lw.numLabels(); l++, scores++) {
                for (int w = 0; w < lw.numWords(l); w++) {
                    long[] word = lw.word(l, w);
                    long[] lead = Arrays.copyOf(word, word.length - 1);
                    int row = rowOfLead.computeIfAbsent(Arrays.stream(lead).boxed().toList(), k -> {
                        rows.add(concat(pattern, lead));
                        textOfRow.add(text);
                        return rows.size() - 1;
                    });
                    float weight = 1f / (word.length * lw.numWords(l));
                    for (int j = 0; j < word.length; j++) scored.add(new ScoredToken(row, pattern.length - 1 + j, word[j], scores, weight));
                }
            }
        }
        return build(rows, scored, scores, firstScore, numLabels, textOfRow.stream().mapToInt(Integer::intValue).toArray(), padId);
    }

    private static VerbalizedBatch build(List<long[]> rows, List<ScoredToken> scored, int scores, int[] firstScore, int[] numLabels,
                                         int[] textOfRow, long padId) {
        int width = rows.stream().mapToInt(r -> r.length).max().orElseThrow();
        long[] ids = new long[rows.size() * width];
        long[] mask = new long[rows.size() * width];
        for (int r = 0; r < rows.size(); r++) {
            long[] row = rows.get(r);
            for (int t = 0; t < width; t++) {
                ids[r * width + t] = t < row.length ? row[t] : padId;
                mask[r * width + t] = t < row.length ? 1 : 0;
            }
        }
        int m = scored.size();
        long[] tokenRow = new long[m];
        long[] tokenPos = new long[m];
        long[] tokenId = new long[m];
        float[] average = new float[scores * m];
        for (int i = 0; i < m; i++) {
            ScoredToken s = scored.get(i);
            tokenRow[i] = s.row();
            tokenPos[i] = s.position();
            tokenId[i] = s.id();
            average[s.score() * m + i] = s.weight();
        }
        return new VerbalizedBatch(Tensors.fromLongs(ids, rows.size(), width), Tensors.fromLongs(mask, rows.size(), width),
                tokenRow, tokenPos, tokenId, average, firstScore, numLabels, textOfRow);
    }

    private static long[] concat(long[] a, long[] b) {
        long[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    public Tensor inputIds() { return inputIds; }

    public Tensor attentionMask() { return attentionMask; }

    /** Rows the model runs: at least one per text. */
    public long rows() { return inputIds.size(0); }

    public long length() { return inputIds.size(1); }

    public int texts() { return firstScore.length; }

    /** Label scores in all: the sum over texts of their verbalizer's labels. */
    public int scores() { return average.length / tokenId.length; }

    public int firstScore(int text) { return firstScore[text]; }

    public int numLabels(int text) { return numLabels[text]; }

    /** The text whose pattern row {@code row} carries. */
    public int textOfRow(int row) { return textOfRow[row]; }

    long[] tokenRow() { return tokenRow; }

    long[] tokenPos() { return tokenPos; }

    long[] tokenId() { return tokenId; }

    float[] average() { return average; }

    @Override
    public void close() {
        inputIds.close();
        attentionMask.close();
    }
}
