import os

from pylive import random_bytes as rb


def test_no_bytes_are_given_twice_across_blocks() -> None:
    chunks = [rb.random_bytes(16) for _ in range(3 * rb.BLOCK_BYTES // 16 + 5)]
    assert all(len(chunk) == 16 for chunk in chunks)
    assert len(set(chunks)) == len(chunks)


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    rb.random_bytes(16)  # the parent now holds a block with bytes still to give
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        os.write(write_end, rb.random_bytes(16))
        os._exit(0)
    os.close(write_end)
    from_child = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(from_child) == 16
    assert from_child != rb.random_bytes(16)
