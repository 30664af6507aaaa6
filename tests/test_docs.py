"""The README's tables are generated from the code's own tables: they must not drift."""

from pathlib import Path

from vqsynth.control import addresses_markdown
from vqsynth.control.mapping import settings_markdown
from vqsynth.control.midi_spec import fixed_ccs_markdown
from vqsynth.engine.settings import server_settings_markdown

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_tables_match_the_code():
    for table in (addresses_markdown(), fixed_ccs_markdown(), settings_markdown(), server_settings_markdown()):
        assert table.strip() in README, "README table out of date: regenerate it from the code"
