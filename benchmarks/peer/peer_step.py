"""The Python peer: HF transformers + PEFT prompt tuning on the batches BloomTune trains on.

Runs the seed recipe as its users run it -- BloomForCausalLM, PromptTuningConfig(CAUSAL_LM, 10
virtual tokens, RANDOM init), DataCollatorForSeq2Seq padding each batch to its longest row (labels
padded with -100), AdamW at lr 3e-3 with the Trainer's gradient clipping at 1.0 -- and times each step
(collate, forward, backward, clip, optimizer) with the wall clock. bf16 is the Trainer's CPU bf16:
fp32 weights under torch.autocast(bfloat16).

  --batches FILE   the JSON lines PeerBatches writes (the same examples, step by step)
  --synthetic N    N steps of the fixed 4 x 256 row with labels on every token (StepFixture's shape)

One JSON line per step on stdout: step, seconds, tokens (real, unpadded), padded_tokens (rows x
longest, virtual tokens not counted), loss, peak_rss_mib (the process's peak so far, loading included).
"""
import argparse
import json
import resource
import sys
import time

import torch
from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
from transformers import BloomForCausalLM, DataCollatorForSeq2Seq, PreTrainedTokenizerFast


def batches_from(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)["examples"]


def synthetic(steps, vocab, batch=4, length=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ids = torch.randint(4, vocab, (batch, length), generator=g).tolist()
        yield [{"input_ids": row, "labels": row} for row in ids]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, default=2)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--batches")
    src.add_argument("--synthetic", type=int)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=a.tokenizer, pad_token="<pad>", eos_token="</s>")
    model = BloomForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    model = get_peft_model(model, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=10,
                                                     prompt_tuning_init=PromptTuningInit.RANDOM))
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, return_tensors="pt")
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    model.train()
    source = batches_from(a.batches) if a.batches else synthetic(a.synthetic, model.config.vocab_size)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "dtype": a.dtype,
                      "trainable": sum(q.numel() for q in params)}), file=sys.stderr)
    for step, examples in enumerate(source, start=1):
        began = time.perf_counter()
        batch = collator([dict(e) for e in examples])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        ids = batch["input_ids"]
        print(json.dumps({"step": step, "seconds": round(seconds, 4),
                          "tokens": sum(len(e["input_ids"]) for e in examples),
                          "padded_tokens": ids.shape[0] * ids.shape[1], "loss": round(loss.item(), 5),
                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}), flush=True)


if __name__ == "__main__":
    main()
