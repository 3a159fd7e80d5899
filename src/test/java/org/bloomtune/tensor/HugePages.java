package org.bloomtune.tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** What the kernel reports about transparent huge pages: its setting, and how many back a mapping. */
public final class HugePages {
    private HugePages() {}

    /** The bracketed choice in {@code /sys/kernel/mm/transparent_hugepage/enabled}: always, madvise or never. */
    public static String setting() throws IOException {
        String line = Files.readString(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
        return line.substring(line.indexOf('[') + 1, line.indexOf(']'));
    }

    /** {@code AnonHugePages} of the mapping in {@code /proc/self/smaps} that holds {@code address}, in kB. */
    public static long backingKb(long address) throws IOException {
        List<String> smaps = Files.readAllLines(Path.of("/proc/self/smaps"));
        for (int i = 0; i < smaps.size(); i++) {
            if (!isMappingLine(smaps.get(i))) continue;
            String[] range = smaps.get(i).split(" ", 2)[0].split("-");
            if (Long.compareUnsigned(address, Long.parseUnsignedLong(range[0], 16)) < 0
                    || Long.compareUnsigned(address, Long.parseUnsignedLong(range[1], 16)) >= 0) continue;
            for (int j = i + 1; j < smaps.size() && !isMappingLine(smaps.get(j)); j++) {
                if (smaps.get(j).startsWith("AnonHugePages:")) return Long.parseLong(smaps.get(j).replaceAll("\\D", ""));
            }
        }
        throw new IllegalStateException("no mapping holds 0x" + Long.toHexString(address));
    }

    private static boolean isMappingLine(String line) { return line.matches("^[0-9a-f]+-[0-9a-f]+ .*"); }
}
