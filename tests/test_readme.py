"""README.md documents every flag of the training CLI, and its test command is what CI runs."""
import os

import train_recognizer as tr
from conftest import REPO


def test_every_training_flag_is_in_the_readme():
    readme = open(os.path.join(REPO, 'README.md')).read()
    flags = [s for a in tr.build_parser()._actions for s in a.option_strings if s.startswith('--') and s != '--help']
    assert len(flags) > 60
    missing = [f for f in flags if '`%s`' % f not in readme and '`%s,' % f not in readme and ', %s`' % f not in readme]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(REPO, 'README.md')).read()
    ci = open(os.path.join(REPO, '.ci', 'run')).read()
    assert '    python -m pytest -q -n 2\n' in readme
    assert '-m pytest -q -n 2' in ci and 'requirements-test.txt' in ci and 'venv' in ci
