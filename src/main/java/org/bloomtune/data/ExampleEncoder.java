package org.bloomtune.data;

import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * Turns records into {@link Example}s: prompt tokens, response tokens and EOS, cut to
 * {@code maxLength}. The response is kept where possible: when the pair is too long the prompt
 * gives way first (from its start, so the "Assistant:" cue next to the response survives), down to
 * half the budget; then the response is cut at its end. Labels cover the response and EOS only,
 * or every token with {@code lossOnPrompt} (as the seed's own code does).
 */
public record ExampleEncoder(Tokenizer tokenizer, PromptTemplate template, int maxLength, long eosId, boolean lossOnPrompt) {

    public ExampleEncoder {
        if (maxLength < 2) throw new IllegalArgumentException("--max-length must be at least 2, got " + maxLength);
    }

    public Example encode(AlpacaRecord r) {
        long[] prompt = tokenizer.encode(template.prompt(r));
        long[] response = append(tokenizer.encode(r.output()), eosId);
        int responseBudget = Math.min(response.length, maxLength - Math.min(prompt.length, maxLength / 2));
        int promptBudget = Math.min(prompt.length, maxLength - responseBudget);
        long[] p = Arrays.copyOfRange(prompt, prompt.length - promptBudget, prompt.length);
        long[] q = Arrays.copyOf(response, responseBudget);
        long[] ids = new long[p.length + q.length];
        long[] labels = new long[ids.length];
        System.arraycopy(p, 0, ids, 0, p.length);
        System.arraycopy(q, 0, ids, p.length, q.length);
        for (int i = 0; i < ids.length; i++) labels[i] = lossOnPrompt || i >= p.length ? ids[i] : CausalLmLoss.IGNORE_INDEX;
        return new Example(ids, labels);
    }

    private static long[] append(long[] a, long x) {
        long[] out = Arrays.copyOf(a, a.length + 1);
        out[a.length] = x;
        return out;
    }
}
