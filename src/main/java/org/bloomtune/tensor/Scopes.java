package org.bloomtune.tensor;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.function.Supplier;

/**
 * Runs a piece of tensor code in its own {@link PointerScope} so its temporaries are freed as
 * soon as it returns, and hands its result to the enclosing scope (or to the caller when none is
 * open). This is how a block's intermediates die before the next block runs.
 */
public final class Scopes {
    private Scopes() {}

    /**
     * Like {@link #inner} but the result belongs to the caller alone, whatever scopes are open:
     * the caller frees it with {@code close()} as soon as it is done with it.
     */
    public static Tensor owned(Supplier<Tensor> body) {
        try (PointerScope inner = new PointerScope()) {
            Tensor result = body.get();
            result.retainReference();
            return result;
        }
    }

    public static Tensor inner(Supplier<Tensor> body) {
        Tensor result;
        try (PointerScope inner = new PointerScope()) {
            result = body.get();
            result.retainReference();          // survive the inner scope's close
        }
        PointerScope outer = PointerScope.getInnerScope();
        if (outer != null) {
            outer.attach(result);              // the outer scope now holds it ...
            result.releaseReference();         // ... and is its only owner
        }
        return result;
    }
}
