"""``hub plugin new NAME``: a provider plugin with the standard shape, rendered from ``template/``.

Every file of the template ends in ``.tmpl`` (so no tool mistakes it for code) and is a
``string.Template``: ``$name`` (the slug), ``$dist`` (the distribution), ``$title``, ``$upper`` (the
environment variables' prefix) and ``$cls`` (the class-name prefix). ``NAME`` in a path becomes the slug.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

TEMPLATE = Path(__file__).parent / "template"
SLUG = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def render(name: str, target: Path) -> list[Path]:
    """Write the plugin ``name`` into ``target`` (which must not exist or be empty); returns the files."""
    if not SLUG.match(name):
        raise ValueError(f"{name!r} is no provider slug: lower-case letters, digits and _, 2 to 40, a letter first")
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty")
    values = {"name": name, "dist": "hub-" + name.replace("_", "-"), "title": name.replace("_", " ").title(),
              "upper": name.upper(), "cls": "".join(part.capitalize() for part in name.split("_"))}
    written = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")
        path = target / Path(*(part.replace("NAME", name) for part in relative.parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(string.Template(source.read_text()).substitute(values))
        written.append(path)
    return written
