package org.bloomtune.classify;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Accuracy, macro-F1 and the confusion matrix on cases worked out by hand. */
class ClassificationMetricsTest {

    @Test
    void threeClassExampleByHand() {
        // gold:      a a a b b c
        // predicted: a a b b c c
        ClassificationMetrics m = ClassificationMetrics.of(List.of("a", "b", "c"), new int[]{0, 0, 0, 1, 1, 2}, new int[]{0, 0, 1, 1, 2, 2});
        assertArrayEquals(new long[]{2, 1, 0}, m.confusion()[0]);
        assertArrayEquals(new long[]{0, 1, 1}, m.confusion()[1]);
        assertArrayEquals(new long[]{0, 0, 1}, m.confusion()[2]);
        assertEquals(4.0 / 6, m.accuracy(), 1e-12);
        // F1(a) = 2·2/(3+2) = 0.8; F1(b) = 2·1/(2+2) = 0.5; F1(c) = 2·1/(1+2) = 2/3.
        assertEquals(0.8, m.f1(0), 1e-12);
        assertEquals(0.5, m.f1(1), 1e-12);
        assertEquals(2.0 / 3, m.f1(2), 1e-12);
        assertEquals((0.8 + 0.5 + 2.0 / 3) / 3, m.macroF1(), 1e-12);
        assertEquals(0, m.majorityLabel());
        assertEquals(0.5, m.majorityAccuracy(m), 1e-12);
    }

    @Test
    void alwaysPredictingOneClassScoresZeroF1OnTheOther() {
        ClassificationMetrics m = ClassificationMetrics.of(List.of("pos", "neg"), new int[]{0, 0, 0, 1}, new int[]{0, 0, 0, 0});
        assertEquals(0.75, m.accuracy(), 1e-12);
        assertEquals(0.0, m.f1(1), 1e-12);
        assertEquals((6.0 / 7 + 0) / 2, m.macroF1(), 1e-12);
    }

    @Test
    void aClassAbsentFromGoldAndPredictionsIsLeftOutOfTheMacroAverage() {
        ClassificationMetrics m = ClassificationMetrics.of(List.of("x", "y", "z"), new int[]{0, 1}, new int[]{0, 1});
        assertEquals(Double.NaN, m.f1(2));
        assertEquals(1.0, m.macroF1(), 1e-12);
    }
}
