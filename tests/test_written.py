from solution import written


def test_hand_derivation_matches_autograd_and_the_answer_key():
    hand, auto = written.by_hand(), written.by_autograd()
    assert hand == auto
    assert (hand["L"], hand["dL/dW1[1,1]"], hand["dL/db1[2]"]) == (3_233_534, 102_732, 57_768)
