package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * A checked batch on the model's device: embeddings [B, T, H] in the compute dtype (not yet
 * normalized), attention mask [B, past + N + T] int64, labels [B, T] int64 or null, and prefix
 * tuning's keys and values or null.
 */
public record PreparedInput(Tensor embeds, Tensor mask, Tensor labels, AttentionPrefix prefix) {}
