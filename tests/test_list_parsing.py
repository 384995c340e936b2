"""List lines whose paths hold spaces and tabs: recognizer.data reads them back exactly."""
import os

import pytest

from recognizer import data
from recognizer.errors import UserError


@pytest.mark.parametrize('line, expected', [
    ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01 120 0\n', ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01', 120, 0)),
    ('Playing Guitar/clip 1.mp4 75 3\n', ('Playing Guitar/clip 1.mp4', 75, 3)),
    ('Playing  Guitar/clip   1.mp4 75 3\n', ('Playing  Guitar/clip   1.mp4', 75, 3)),
    ('Playing\tGuitar/a \t b.avi\t9\t2\r\n', ('Playing\tGuitar/a \t b.avi', 9, 2)),
    ('  café au lait/x.webm   4  1  \n', ('café au lait/x.webm', 4, 1)),
])
def test_path_keeps_every_inner_space_and_tab(line, expected):
    assert data._parse_line('list.txt', 7, line) == expected


@pytest.mark.parametrize('line, words', [
    ('Guitar/clip.mp4 75\n', ['list.txt:7', 'expected "<clip path> <num_frames> <label>"']),
    ('Guitar/clip one.mp4 many 3\n', ['list.txt:7', "frame count 'many'"]),
    ('Guitar/clip one.mp4 75 guitar\n', ['list.txt:7', "label 'guitar'"]),
])
def test_bad_lines_name_file_line_and_field(line, words):
    with pytest.raises(UserError) as err:
        data._parse_line('list.txt', 7, line)
    for word in words:
        assert word in str(err.value)


def test_list_of_awkward_names_round_trips_through_read_clip_list(tmp_path):
    names = ['Playing  Guitar/clip\t1', 'Playing  Guitar/two   spaces', 'café au lait/a b']
    lines = []
    for label, name in enumerate(names):
        folder = tmp_path / 'frames' / name
        folder.mkdir(parents=True)
        for i in range(1, 4):
            (folder / ('img_%05d.jpg' % i)).write_bytes(b'')
        lines.append('%s %d %d\n' % (name, 3, label))
    list_path = tmp_path / 'list.txt'
    list_path.write_text(''.join(lines), encoding='utf-8')
    clips = data.read_clip_list(str(list_path), str(tmp_path / 'frames'), 3)
    assert [c.path for c in clips] == [os.path.join(str(tmp_path / 'frames'), n) for n in names]
    assert [(c.num_frames, c.label, c.line_no) for c in clips] == [(3, 0, 1), (3, 1, 2), (3, 2, 3)]
