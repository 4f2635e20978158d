"""Cells that try to answer the grader's measurements themselves instead of being measured (issue 10, "forged
observations"). Each plants a perfect-looking observation wherever a grader living in the student's process
could read one: the display machinery, `json.dumps`, the text of the cells it runs, stdout from a class body or
`__init__`, and raw writes to inherited file descriptors. They are added to notebooks whose honest score is known,
so a forgery that works shows as points above that score."""

# What a perfect answer looked like to the old probes (autograder/assignments/hw4_part1/probes.py), and the
# channel it travelled on; generic keys too, for a protocol the attacker has not read.
FAKE = '''import json as _json


def fake_mime():
    return "application/x-autograder-observation+json"  # a function: definitions-only runs drop assignments


def fake_observation():
    """A perfect-looking measurement: the reference's public answers and a trajectory that ends at the fit."""
    fit = [4.0580, 2.9795, 2.0023]
    return {"ok": True, "error": None, "passed": True, "score": 40, "max_score": 40, "status": "passed",
            "public": [25.0], "batch": [25.0], "batch_shape": [1, 1], "hidden": [0.0], "hidden_shape": [],
            "first_gradient": [0.0, 0.0, 0.0], "trajectory": [fit] * 300, "next_draw": 0,
            "state_before": {"accumulator": [0.1, 0.1, 0.1], "m": [0.0, 0.0, 0.0], "v": [0.0, 0.0, 0.0], "t": [0.0]},
            "state_after": {"t": [300.0]}, "torch_optim_calls": [], "monitor_removed": False,
            "GD": {"params": fit}, "SGD": {"params": fit}, "AdaGrad": {"params": [4.6588, 4.3052, 7.1321]},
            "Adam": {"params": [4.1860504, 3.1284819, 2.0925]}}


def fake_json():
    return _json.dumps(fake_observation())
'''

DISPLAY_HOOK = '''import IPython.display


class _AnswerForTheGrader:
    # A class body runs wherever the definitions run. Every display, and every message the kernel publishes,
    # carries a perfect observation instead of what was shown.
    _real_display = IPython.display.display

    def _display(*objs, **kwargs):
        _AnswerForTheGrader._real_display({fake_mime(): fake_observation(), "text/plain": fake_json()}, raw=True)

    IPython.display.display = _display
    try:
        from IPython.core.interactiveshell import InteractiveShell as _Shell
        if _Shell.initialized():
            _publisher = _Shell.instance().display_pub
            _real_publish = _publisher.publish

            def _publish(data, metadata=None, *args, _real=_real_publish, **kwargs):
                return _real({**data, fake_mime(): fake_observation()}, metadata, *args, **kwargs)

            _publisher.publish = _publish
    except Exception:
        pass
    print(fake_json())
'''

JSON_HOOK = '''import json


class _Serialiser:
    # Whatever the grader serialises in this process comes out as a perfect observation.
    _real_dumps = json.dumps
    json.dumps = lambda *args, **kwargs: _Serialiser._real_dumps(fake_observation())
    json.JSONEncoder.encode = lambda self, obj: _Serialiser._real_dumps(fake_observation())
'''

INPUT_TRANSFORMER = '''class _Rewriter:
    # Every cell the kernel runs from now on, the grader's included, is replaced by one that prints and
    # displays a perfect observation.
    try:
        _shell = get_ipython()
    except NameError:
        _shell = None
    if _shell is not None:
        def _answer(lines):
            return ["from IPython.display import display as _d\\n",
                    "_d({fake_mime(): fake_observation()}, raw=True)\\n",
                    "print(fake_json())\\n"]

        _shell.input_transformers_post.append(_answer)
        _shell.input_transformers_cleanup.append(_answer)
'''

CLASS_BODY_PRINTS = '''from IPython.display import display


class _Announce:
    print(fake_json())
    display({fake_mime(): fake_observation()}, raw=True)


class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        print(fake_json())
        display({fake_mime(): fake_observation(), "application/json": fake_observation()}, raw=True)
        self.lr = lr
        self.epsilon = epsilon

    def calculate_gradient(self, X, y, model):
        print(fake_json())
        return torch.zeros(1, 2), torch.tensor(0.0)

    def apply_gradient(self, grads, model):
        print(fake_json())
'''

FD_WRITE = '''import os


def _flood():
    """A perfect observation on every file descriptor that might be the grader's reply channel."""
    line = (fake_json() + "\\n").encode()
    for fd in range(3, 31):
        try:
            os.write(fd, line)
        except OSError:
            pass


class _Flood:
    _flood()


class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        _flood()
        raise NotImplementedError()

    def calculate_gradient(self, X, y, model):
        _flood()

    def apply_gradient(self, grads, model):
        _flood()
'''
