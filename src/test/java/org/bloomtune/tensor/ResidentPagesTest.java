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
 * rows' pages in one call, a page already covered or resident not asked for again, the contents
 * untouched.
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
    void pagesAlreadyResidentAreNotAskedForAndARunIsAskedForFromItsFirstMissingPageToItsLast() {
        MemorySegment mapping = Residency.map(48);
        try {
            long rowBytes = 8 * PAGE;
            // Rows 0-2 written in pages 0-2 (a buffer handed back from an earlier use); row 4 in pages 0 and 3 only.
            for (int r = 0; r < 3; r++) {
                for (int p = 0; p < 3; p++) mapping.set(ValueLayout.JAVA_BYTE, r * rowBytes + p * PAGE, (byte) 1);
            }
            mapping.set(ValueLayout.JAVA_BYTE, 4 * rowBytes, (byte) 2);
            mapping.set(ValueLayout.JAVA_BYTE, 4 * rowBytes + 3 * PAGE, (byte) 3);
            assertEquals(11, Residency.residentPages(mapping.address(), 48));
            // Pages 0-3 of six rows: rows 3 and 5 missing all four, row 4 its pages 1 and 2, rows 0-2 their page 3.
            assertEquals(6, ResidentPages.populateRows(mapping, 6, rowBytes, 0, 4 * PAGE));
            assertEquals(24, Residency.residentPages(mapping.address(), 48));
            for (int r = 0; r < 6; r++) {
                assertFalse(Residency.resident(mapping.address() + r * rowBytes + 4 * PAGE), "row " + r + " past what was asked");
            }
            assertEquals(2, mapping.get(ValueLayout.JAVA_BYTE, 4 * rowBytes));
            assertEquals(3, mapping.get(ValueLayout.JAVA_BYTE, 4 * rowBytes + 3 * PAGE));
            // Everything asked for is resident now: no call at all.
            assertEquals(0, ResidentPages.populateRows(mapping, 6, rowBytes, 0, 4 * PAGE));
            assertEquals(0, ResidentPages.populateRows(mapping, 6, rowBytes, 100, 3 * PAGE + 5));
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
