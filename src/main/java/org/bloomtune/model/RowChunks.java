package org.bloomtune.model;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.function.UnaryOperator;

/**
 * Products of 9 to 16 rows — a server's decode batch — through int8 row kernels that take eight
 * rows a call, eight at a time. Past eight rows those kernels' fallbacks (libtorch's int8 GEMM, the
 * product of the dequantized weight) cost several times two passes of the row kernel
 * (benchmarks/FINDINGS.md). Each row's product is its own, so the chunks give what one call would.
 */
final class RowChunks {
    /** Rows one call of the row kernels takes. */
    static final long CALL_ROWS = 8;

    /** Rows up to which a product goes in chunks: two calls' worth, where reading the weight twice still wins. */
    static final long MAX_ROWS = 16;

    private RowChunks() {}

    /** Whether {@code rows} rows are more than one call takes and few enough to go in chunks. */
    static boolean applies(long rows) { return rows > CALL_ROWS && rows <= MAX_ROWS; }

    /** {@code x2d} [M, in]'s first chunk: what a caller checks its row kernel against. */
    static Tensor first(Tensor x2d) { return x2d.narrow(0, 0, CALL_ROWS); }

    /** {@code product} of each chunk of {@code x2d}'s rows, concatenated: [M, out]. */
    static Tensor multiply(Tensor x2d, UnaryOperator<Tensor> product) {
        try (PointerScope scope = new PointerScope()) {
            TensorVector parts = new TensorVector();
            long m = x2d.size(0);
            for (long r = 0; r < m; r += CALL_ROWS) parts.push_back(product.apply(x2d.narrow(0, r, Math.min(CALL_ROWS, m - r))));
            return Tensors.escape(torch.cat(parts, 0));
        }
    }
}
