"""Which record a run is judged against (evals/golden.py): its own, else the nearest runtime's, else none."""

from evals.golden import RecordChoice, choose_record, nearest_order

M = "smollm2-135m-instruct"


def test_a_runtime_with_a_record_uses_its_own():
    choice = choose_record([f"{M}@cpu-bf16", f"{M}@cpu-fp32"], f"{M}@cpu-fp32")
    assert choice == RecordChoice(f"{M}@cpu-fp32", f"{M}@cpu-fp32") and not choice.fallback
    assert choice.line("CMD") == f"record: {M}@cpu-fp32"


def test_a_runtime_without_one_takes_the_nearest_of_the_same_base_model_as_drift():
    recorded = [f"{M}@cpu-bf16", f"{M}@cpu-fp32", "other@cuda-nf4-bf16"]
    choice = choose_record(recorded, f"{M}@cuda-nf4-bf16")
    assert choice.used == f"{M}@cpu-bf16" and choice.fallback  # nearer to cuda than cpu-fp32; another model's never
    assert choice.line("CMD") == (f"record: {M}@cpu-bf16, judged as drift (no record for {M}@cuda-nf4-bf16; record "
                                  "one on this machine with `CMD`)")
    assert choose_record([f"{M}@cuda-nf4-bf16"], f"{M}@cpu-fp32").used == f"{M}@cuda-nf4-bf16"


def test_the_declared_order_nearest_first_ties_to_the_earlier():
    assert nearest_order("cpu-fp32") == ["cpu-bf16", "cuda-nf4-bf16"]
    assert nearest_order("cpu-bf16") == ["cpu-fp32", "cuda-nf4-bf16"]
    assert nearest_order("cuda-nf4-bf16") == ["cpu-bf16", "cpu-fp32"]
    assert nearest_order("cpu-nf4-bf16") == ["cpu-fp32", "cpu-bf16", "cuda-nf4-bf16"]  # not in the list: all, in order


def test_a_base_model_with_no_record_says_so_and_how_to_record_one():
    choice = choose_record(["other@cpu-fp32"], f"{M}@cpu-fp32")
    assert choice.used is None and not choice.fallback
    assert choice.line("CMD").startswith(f"record: none for this base model ({M}@cpu-fp32)")
    assert choice.line("CMD").endswith("record one with `CMD`")
