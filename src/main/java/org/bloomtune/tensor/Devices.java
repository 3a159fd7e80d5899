package org.bloomtune.tensor;

import org.bytedeco.pytorch.global.torch;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Device names as libtorch spells them, checked before libtorch sees them: an unknown name or a
 * CUDA device this build or machine lacks is a one-line error here, not a C++ exception trace.
 */
public final class Devices {
    private static final Pattern NAME = Pattern.compile("cpu|cuda(?::(\\d{1,4}))?");

    private Devices() {}

    /** Checks the spelling: {@code cpu}, {@code cuda} or {@code cuda:N}. */
    public static void checkName(String device) {
        if (device == null || !NAME.matcher(device).matches()) {
            throw new IllegalArgumentException("device must be cpu, cuda or cuda:N, got '" + device + "'");
        }
    }

    /** Checks that {@code device} exists here: this libtorch has CUDA and sees that many devices. */
    public static void requireAvailable(String device) {
        checkName(device);
        if (device.equals("cpu")) return;
        LibTorch.init();
        if (!torch.cuda_is_available()) {
            throw new IllegalArgumentException("device " + device + ": " + (cudaBuild()
                    ? "this is the CUDA build of libtorch, but no CUDA device is visible (check the driver and CUDA_VISIBLE_DEVICES)"
                    : "this is the CPU build of libtorch; CUDA needs the GPU build (mvn -Pgpu) and an NVIDIA GPU"));
        }
        Matcher m = NAME.matcher(device);
        if (m.matches() && m.group(1) != null) {
            int index = Integer.parseInt(m.group(1));
            int count = torch.cuda_device_count();
            if (index >= count) {
                throw new IllegalArgumentException("device " + device + " does not exist: " + count + " CUDA device(s) visible (cuda:0"
                        + (count > 1 ? " to cuda:" + (count - 1) : "") + ")");
            }
        }
    }

    // The -Pgpu profile brings JavaCPP's CUDA presets; the CPU build does not.
    private static boolean cudaBuild() {
        try {
            Class.forName("org.bytedeco.cuda.global.cudart", false, Devices.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }
}
