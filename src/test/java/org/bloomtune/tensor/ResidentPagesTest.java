package org.bloomtune.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.bloomtune.tensor.Residency.PAGE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pages asked for become resident — those and no others, as mincore reports them — neighbouring
 * rows' pages in one call, a page already covered not asked for again, the contents untouched.
 */
class ResidentPagesTest {

    @Test
    void theKernelsThatKnowTheAdviceAreUsed() {
        String[] version = System.getProperty("os.version").split("[.-]");
        boolean knows = System.getProperty("os.name").startsWith("Linux")
                && (Integer.parseInt(version[0]) > 5 || Integer.parseInt(version[0]) == 5 && Integer.parseInt(version[1]) >= 14);
        assertEquals(knows, ResidentPages.supported(), "Linux 5.14+ populates pages on request: " + System.getProperty("os.version"));
    }

    @Test
    void rowsApartGetTheirOwnPagesAndACoveredPageIsNotAskedForAgain() {
        MemorySegment mapping = Residency.map(48);
        try {
            long rowBytes = 8 * PAGE;
            assertEquals(0, Residency.residentPages(mapping.address(), 48));
            // Bytes [0, PAGE + 100) of each of six rows: pages 0 and 1 of each, one call per row (their pages are not adjacent).
            assertEquals(6, ResidentPages.populateRows(mapping, 6, rowBytes, 0, PAGE + 100));
            assertEquals(12, Residency.residentPages(mapping.address(), 48));
            for (int r = 0; r < 6; r++) {
                long row = mapping.address() + r * rowBytes;
                assertTrue(Residency.resident(row) && Residency.resident(row + PAGE), "row " + r);
                assertFalse(Residency.resident(row + 2 * PAGE), "row " + r + " past what was asked");
            }
            // The rest of page 1: already covered, no call.
            assertEquals(0, ResidentPages.populateRows(mapping, 6, rowBytes, PAGE + 100, 2 * PAGE));
            assertEquals(12, Residency.residentPages(mapping.address(), 48));
            // One byte into page 2 of each row.
            assertEquals(6, ResidentPages.populateRows(mapping, 6, rowBytes, 2 * PAGE, 2 * PAGE + 1));
            assertEquals(18, Residency.residentPages(mapping.address(), 48));
        } finally {
            Residency.unmap(mapping);
        }
    }

    @Test
    void rowsSharingPagesGoInOneCallAndKeepTheirContents() {
        MemorySegment mapping = Residency.map(16);
        try {
            long rowBytes = 640;            // a float32 key row of a 160-position cache
            long rows = 16 * PAGE / rowBytes;
            mapping.set(ValueLayout.JAVA_LONG, 3 * PAGE + 8, 0x0123456789abcdefL);
            // Every page holds some row's first bytes: all of them, in one call.
            assertEquals(1, ResidentPages.populateRows(mapping, rows, rowBytes, 0, 100));
            assertEquals(16, Residency.residentPages(mapping.address(), 16));
            assertEquals(0x0123456789abcdefL, mapping.get(ValueLayout.JAVA_LONG, 3 * PAGE + 8));
            assertEquals(0L, mapping.get(ValueLayout.JAVA_LONG, 5 * PAGE));
        } finally {
            Residency.unmap(mapping);
        }
    }

    @Test
    void rangesOutsideTheBufferAreRefused() {
        MemorySegment mapping = Residency.map(2);
        try {
            assertThrows(IllegalArgumentException.class, () -> ResidentPages.populateRows(mapping, 3, PAGE, 0, 10));
            assertThrows(IllegalArgumentException.class, () -> ResidentPages.populateRows(mapping, 2, PAGE, 0, PAGE + 1));
            assertThrows(IllegalArgumentException.class, () -> ResidentPages.populateRows(mapping, 2, PAGE, 20, 10));
            assertThrows(IllegalArgumentException.class, () -> ResidentPages.populateRows(mapping, -1, PAGE, 0, 10));
            assertThrows(IllegalArgumentException.class, () -> ResidentPages.populateRows(mapping, Long.MAX_VALUE / 2, 4, 0, 1));
            assertEquals(0, Residency.residentPages(mapping.address(), 2));
        } finally {
            Residency.unmap(mapping);
        }
    }
}
