"""`python -m solution.written`: question 1.1 (h) by the Wengert list, the closed forms and autograd.

The whole written key (1.1 a-i, with rubric) is `python -m solution.answer_key`; this prints only (h).
"""

from solution.answer_key.numbers import h_answers

__all__ = ["main"]


def main() -> None:
    for name, value in h_answers().items():  # h_answers raises unless all three computations agree
        print(f"{name:12s} {value:>12,}   (Wengert list = closed form = autograd)")


if __name__ == "__main__":
    main()
