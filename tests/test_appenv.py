"""What the app's environment holds and what a missing module's hint says (no installs)."""

from __future__ import annotations

from pathlib import Path

from pylive import appenv

PYPROJECT = """[project]
name = "shop"
dependencies = ["requests>=2", "aws-cdk-lib>=2", "pylive"]

[dependency-groups]
lint = ["ruff"]
dev = ["pytest>=8", {include-group = "lint"}]

[tool.pylive]
name = "shop"
"""


def make_app(root: Path, *, requirements: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "functions").mkdir(exist_ok=True)
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return root


def test_the_project_dependencies_without_infrastructure_packages(tmp_path: Path) -> None:
    env = appenv.plan(make_app(tmp_path))
    assert env.requirements_files == ()
    assert env.packages == ("requests>=2", "pytest>=8", "ruff", "boto3")
    assert env.dependency_file() == "pyproject.toml"
    assert env.inputs() == [tmp_path / "pyproject.toml", tmp_path / "requirements.txt"]


def test_requirements_txt_wins_as_it_does_for_a_bundle(tmp_path: Path) -> None:
    env = appenv.plan(make_app(tmp_path, requirements="sqlalchemy>=2\n"))
    assert env.requirements_files == (tmp_path / "requirements.txt",)
    assert env.packages == ("pytest>=8", "ruff", "boto3")
    assert env.dependency_file() == "requirements.txt"
    assert env.source == "requirements.txt"


def test_a_function_with_its_own_requirements_gets_them_too(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", requirements="sqlalchemy>=2\n")
    orders = app / "services" / "orders"
    orders.mkdir(parents=True)
    (orders / "requirements.txt").write_text("stripe\n")
    env = appenv.plan(app, [str(app), str(orders), str(app / "services" / "mail")])
    assert env.requirements_files == (app / "requirements.txt", orders / "requirements.txt")
    assert env.source == "requirements.txt + services/orders/requirements.txt"
    # a function's requirements.txt is watched also before it exists
    assert app / "services" / "mail" / "requirements.txt" in env.inputs()
    assert env.dependency_file(orders) == "services/orders/requirements.txt"
    assert env.dependency_file(app / "services" / "mail") == "requirements.txt"
    assert appenv.missing_module_hint(
        app, app / ".venv" / "bin" / "python", str(orders), "No module named 'stripe'"
    ).startswith("add the package that provides 'stripe' to services/orders/requirements.txt")


def test_the_digest_follows_the_requirements(tmp_path: Path) -> None:
    app = make_app(tmp_path, requirements="sqlalchemy>=2\n")
    before = appenv.plan(app).digest()
    assert appenv.plan(app).digest() == before
    (app / "requirements.txt").write_text("sqlalchemy>=2\npymysql\n")
    assert appenv.plan(app).digest() != before


def test_a_missing_package_is_hinted_with_the_file_to_add_it_to(tmp_path: Path) -> None:
    app = make_app(tmp_path, requirements="")
    venv_python = app / ".venv" / "bin" / "python"
    message = "Unable to import module 'functions/items': No module named 'sqlalchemy.orm'"
    hint = appenv.missing_module_hint(app, venv_python, str(app), message)
    assert "'sqlalchemy'" in hint and "requirements.txt" in hint
    assert "install it into the interpreter" in hint  # no environment managed by pylive
    (app / ".venv").mkdir()
    (app / ".venv" / appenv.STAMP_FILE).write_text("{}")
    other = tmp_path / "elsewhere" / "python"  # [tool.pylive] python names another one
    assert "install it into the interpreter" in appenv.missing_module_hint(
        app, other, str(app), message
    )
    assert appenv.missing_module_hint(app, venv_python, str(app), message) == (
        "add the package that provides 'sqlalchemy' to requirements.txt; pylive dev installs it"
    )


def test_no_hint_for_the_apps_own_modules_or_other_errors(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    venv_python = app / ".venv" / "bin" / "python"
    own = "Unable to import module 'functions/hello': No module named 'functions.hello'"
    assert appenv.missing_module_hint(app, venv_python, str(app), own) == ""
    assert (
        appenv.missing_module_hint(
            app, venv_python, str(app), "Syntax error in module 'functions/hello'"
        )
        == ""
    )
