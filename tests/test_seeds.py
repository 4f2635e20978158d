from autograder.assignment import Seeds


def test_seeds_depend_on_the_submission_the_case_and_the_secret():
    seeds = Seeds("secret", "digest-a")
    assert seeds("Adam:custom") == Seeds("secret", "digest-a")("Adam:custom")
    assert seeds("Adam:custom") != seeds("Adam:handout")
    assert seeds("Adam:custom") != Seeds("secret", "digest-b")("Adam:custom")
    assert seeds("Adam:custom") != Seeds("other secret", "digest-a")("Adam:custom")
    assert 0 <= seeds("x") < 2**31
