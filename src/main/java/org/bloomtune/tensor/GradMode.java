package org.bloomtune.tensor;

/**
 * Switches libtorch's thread-local autograd recording for a block and restores it afterwards:
 * {@code try (var g = GradMode.off()) { ... }}. Must be closed on the thread that opened it.
 */
public final class GradMode implements AutoCloseable {
    private final boolean previous;

    private GradMode(boolean enabled) {
        LibTorch.init();
        this.previous = org.bytedeco.pytorch.GradMode.is_enabled();
        org.bytedeco.pytorch.GradMode.set_enabled(enabled);
    }

    public static GradMode off() { return new GradMode(false); }

    public static GradMode on() { return new GradMode(true); }

    @Override
    public void close() {
        org.bytedeco.pytorch.GradMode.set_enabled(previous);
    }
}
