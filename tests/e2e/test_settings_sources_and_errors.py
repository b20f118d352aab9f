"""Settings: where they are read from, and how a bad one is reported (healthcheck issue, 1-2)."""

import base64
import hashlib
import os

from conftest import ROOT, SECRET


def encrypt_like_the_panel(plain: str, infra_key: str) -> str:
    """AES-256-CBC, key sha256(INFRA_SECRET_KEY), base64(IV + ciphertext), PKCS#7."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = hashlib.sha256(infra_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def test_reads_the_env_file_beside_the_script_from_any_working_directory(run_check, gateway):
    run = run_check()
    assert run.code == 0, run.stdout + run.stderr
    assert run.stdout == "" and run.stderr == ""
    assert gateway.count("list") == 1


def test_env_file_option_names_another_settings_file(run_check, gateway, tmp_path):
    other = tmp_path / "elsewhere.env"
    other.write_text(f"WPP_GATEWAY_BASE_URL={gateway.url}\nWPP_GATEWAY_SECRET={SECRET}\n")
    run = run_check("--env-file", str(other), write_dotenv=False)
    assert run.code == 0, run.stdout
    assert gateway.count("list") == 1


def test_environment_wins_over_the_env_file(run_check, gateway):
    run = run_check(env={"WPP_GATEWAY_SECRET": "wrong-secret-in-file"},
                    environ={"WPP_GATEWAY_SECRET": SECRET})
    assert run.code == 0, run.stdout
    assert gateway.calls("list")[0]["headers"]["X-Gateway-Secret"] == SECRET


def test_values_are_taken_literally_without_interpolation(run_check, gateway):
    gateway.secret = "abc${HOME}def-literal"
    run = run_check(env={"WPP_GATEWAY_SECRET": "'abc${HOME}def-literal'"})
    assert run.code == 0, run.stdout


def test_missing_variable_names_it_and_the_file(run_check, home):
    run = run_check(env={"WPP_GATEWAY_SECRET": None})
    assert run.code == 3
    assert run.first_line.startswith("WHATSAPP SESSIONS UNKNOWN - WPP_GATEWAY_SECRET is missing")
    # The status line is cut at 200 characters for Nagios; the whole message is the next line.
    lines = run.stdout.splitlines()
    assert len(run.first_line) <= 200 and len(lines) == 2
    assert lines[1].startswith("WHATSAPP SESSIONS UNKNOWN") and str(home / ".env") in lines[1]
    assert "Traceback" not in run.stdout + run.stderr
    assert "WPP_GATEWAY_SECRET is missing" in run.log


def test_empty_variable_is_reported_like_a_missing_one(run_check):
    run = run_check(env={"WPP_GATEWAY_BASE_URL": ""})
    assert run.code == 3
    assert "WPP_GATEWAY_BASE_URL is missing or empty" in run.first_line


def test_malformed_timeout_names_the_variable(run_check, home):
    run = run_check(env={"HEALTHCHECK_QR_TIMEOUT": "soon"})
    assert run.code == 3
    assert "HEALTHCHECK_QR_TIMEOUT must be a number of seconds" in run.first_line
    assert str(home / ".env") in run.stdout


def test_malformed_tls_flag_names_the_variable(run_check):
    run = run_check(env={"HEALTHCHECK_VERIFY_TLS": "maybe"})
    assert run.code == 3
    assert "HEALTHCHECK_VERIFY_TLS must be true or false" in run.first_line


def test_missing_env_file_given_on_the_command_line_is_unknown(run_check, tmp_path):
    run = run_check("--env-file", str(tmp_path / "nope.env"))
    assert run.code == 3
    assert "nope.env not found" in run.first_line


def test_bad_command_line_is_unknown_not_usage_exit_2(run_check, gateway):
    run = run_check("--frobnicate")
    assert run.code == 3
    assert run.first_line.startswith("WHATSAPP SESSIONS UNKNOWN - bad command line")
    assert gateway.requests == []


def test_help_names_every_env_variable(run_check):
    run = run_check("--help")
    assert run.code == 0
    import re
    documented = set(re.findall(r"^#? *([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(),
                                re.MULTILINE))
    assert len(documented) > 20
    for name in documented:
        assert name in run.stdout


def test_encrypted_secret_is_decrypted_as_the_panel_does(run_check, gateway):
    stored = encrypt_like_the_panel(SECRET, "panel-infra-key")
    run = run_check(env={"WPP_GATEWAY_SECRET": stored, "INFRA_SECRET_KEY": "panel-infra-key"})
    assert run.code == 0, run.stdout
    assert gateway.calls("list")[0]["headers"]["X-Gateway-Secret"] == SECRET


def test_secret_of_32_hex_characters_is_plain_even_with_a_key(run_check, gateway):
    gateway.secret = "0123456789abcdef0123456789ABCDEF"
    run = run_check(env={"WPP_GATEWAY_SECRET": gateway.secret, "INFRA_SECRET_KEY": "k"})
    assert run.code == 0, run.stdout


def test_ciphertext_that_does_not_decrypt_names_infra_secret_key(run_check, gateway):
    stored = encrypt_like_the_panel(SECRET, "the-old-key")
    run = run_check(env={"WPP_GATEWAY_SECRET": stored, "INFRA_SECRET_KEY": "a-new-key"})
    assert run.code == 3
    assert "does not decrypt with INFRA_SECRET_KEY" in run.first_line
    assert gateway.requests == []
    assert stored not in run.everything() and "a-new-key" not in run.everything()


def test_encrypted_secret_without_cryptography_says_how_to_install_it(run_check, tmp_path):
    blocker = tmp_path / "no-cryptography" / "cryptography"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not installed here')\n")
    stored = encrypt_like_the_panel(SECRET, "panel-infra-key")
    run = run_check(env={"WPP_GATEWAY_SECRET": stored, "INFRA_SECRET_KEY": "panel-infra-key"},
                    environ={"PYTHONPATH": str(blocker.parent)})
    assert run.code == 3
    assert "-m pip install cryptography" in run.first_line  # into the venv that runs it
    assert "Traceback" not in run.stdout + run.stderr


def test_every_setting_the_code_reads_is_in_the_one_table():
    """healthcheck/reference.py names exactly the variables the code reads."""
    import re

    from conftest import source_files

    from healthcheck.reference import SETTINGS
    code = "".join(path.read_text() for path in source_files()
                   if path.name != "reference.py")
    read = set(re.findall(r'"((?:WPP|HEALTHCHECK|INFRA|DB)_[A-Z_]+)"', code))
    table = [setting.name for setting in SETTINGS]
    assert len(read) > 20 and len(table) == len(set(table))
    assert sorted(read - set(table)) == [], "add these to healthcheck/reference.py"
    assert sorted(set(table) - read) == [], "the code no longer reads these"


def test_env_example_and_docs_follow_the_table():
    import re
    import subprocess
    import sys

    from healthcheck.reference import SETTINGS
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? *([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert documented == {setting.name for setting in SETTINGS}
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "make_docs.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_troubleshooting_table_covers_every_error_line():
    """Each error or warning the command can print has a row in docs/troubleshooting.md."""
    from error_lines import error_phrases
    readme = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    section = readme
    from conftest import source_files
    phrases = error_phrases(*source_files())
    assert len(phrases) > 50
    missing = sorted(p for p in phrases if p not in section)
    assert not missing, f"add these to the troubleshooting table (docs/): {missing}"
