"""The reference's answer to each Part 2 probe call: the same measurements, run on solution.lora."""

from __future__ import annotations

from autograder.assignment import Call
from autograder.assignments.hw4_part2 import probes
from solution.lora import MyLoraConfig, MyLoraLayer, freeze_all_but_classifier, get_lora_model


def expected(call: Call) -> dict:
    args = call.args
    if call.entry == "probe_layer_init":
        return probes.measure_layer_init(MyLoraLayer, args)
    if call.entry == "probe_scaling":
        return probes.measure_scaling(MyLoraLayer, args)
    if call.entry == "probe_dropout":
        return probes.measure_dropout(MyLoraLayer, args)
    if call.entry == "probe_model":
        return probes.measure_model(MyLoraConfig, get_lora_model, args)  # the course's targets throughout
    if call.entry == "probe_step":
        return probes.measure_step(MyLoraConfig, get_lora_model, args)
    if call.entry == "probe_last_layer":
        return probes.measure_last_layer(lambda model: (freeze_all_but_classifier(model), []), args)
    raise ValueError(f"no reference for probe entry {call.entry!r}")
