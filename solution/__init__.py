"""The HW4 reference solution: everything the grader compares students against."""

from solution.lora import MyLoraConfig, MyLoraLayer, get_lora_model
from solution.part1 import GD, SGD, AdaGrad, Adam, LinearModel, TorchLinearModel, loss, make_data, mse

__all__ = [
    "GD", "SGD", "AdaGrad", "Adam", "LinearModel", "TorchLinearModel", "loss", "make_data", "mse",
    "MyLoraConfig", "MyLoraLayer", "get_lora_model",
]
