"""How golive connects, against the machine's MariaDB and PostgreSQL: MySQL URL parameters (every TLS spelling people
use, an unknown one refused), a TLS request honoured or refused, MySQL credentials from the environment and option
files (never on the command line), and PostgreSQL's TLS failures in libpq's own words."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from golive.errors import ConfigError, ConnectionFailed
from golive.urls import parse_url

PASSWORD = "Opt-file-Pw9"


def _base(mysql_admin_url: str) -> str:
    """``mysql://root@127.0.0.1:3306`` of the admin URL (no database)."""
    return mysql_admin_url.rsplit("/", 1)[0]


def _server(mysql_admin_url: str) -> str:
    """``127.0.0.1:3306`` of the admin URL."""
    u = parse_url(mysql_admin_url)
    return f"{u.host or '127.0.0.1'}:{u.port or 3306}"


def _admin(mysql_admin_url: str, *stmts: str):
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs

    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw.pop("database", None)
    conn = pymysql.connect(**kw, autocommit=True)
    try:
        with conn.cursor() as cur:
            out = None
            for s in stmts:
                cur.execute(s)
                out = cur.fetchall()
            return out
    finally:
        conn.close()


def _server_has_tls(mysql_admin_url: str) -> bool:
    return (_admin(mysql_admin_url, "SHOW VARIABLES LIKE 'have_ssl'") or [("", "")])[0][1] == "YES"


def _mysql_connect(url: str):
    from golive.dialects.mysql.session import connect

    return connect(parse_url(url), autocommit=True)


def _current_user(url: str) -> str:
    conn = _mysql_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            return cur.fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------- MySQL URL parameters

@pytest.mark.parametrize("query, mode", [
    ("ssl_mode=REQUIRED", "REQUIRED"), ("ssl-mode=required", "REQUIRED"), ("sslmode=require", "REQUIRED"),
    ("sslmode=disable", "DISABLED"), ("ssl_mode=DISABLED", "DISABLED"), ("sslmode=prefer", "PREFERRED"),
    ("sslmode=allow", "PREFERRED"), ("ssl_mode=VERIFY_CA", "VERIFY_CA"), ("sslmode=verify-ca", "VERIFY_CA"),
    ("sslmode=verify-full", "VERIFY_IDENTITY"), ("ssl-mode=VERIFY_IDENTITY", "VERIFY_IDENTITY"),
    ("ssl=true", "REQUIRED"), ("ssl=0", "DISABLED"), ("ssl_verify_cert=true", "VERIFY_CA"),
    ("ssl_verify_identity=1", "VERIFY_IDENTITY"), ("ssl_mode=REQUIRED&ssl_verify_identity=true", "VERIFY_IDENTITY"),
    ("ssl_verify_cert=false", None), ("", None),
])
def test_mysql_tls_spellings_name_one_mode(query, mode):
    from golive.dialects.mysql.options import resolve

    assert resolve(parse_url(f"mysql://u@db.example/app?{query}")).tls.mode == mode


def test_mysql_tls_certificates_and_contradictions(tmp_path):
    from golive.dialects.mysql.options import resolve

    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    assert resolve(parse_url(f"mysql://u@h/app?ssl_ca={ca}")).tls.mode == "VERIFY_CA"  # a CA given is used
    assert resolve(parse_url(f"mysql://u@h/app?sslrootcert={ca}&sslmode=verify-full")).tls.ca == str(ca)
    for query, words in [("ssl_mode=DISABLED&ssl_verify_cert=true", "contradicts"),
                         ("ssl_mode=sometimes", "unknown ssl_mode 'sometimes'"),
                         ("ssl_ca=/no/such/ca.pem", "no such file"), ("ssl=maybe", "use true or false")]:
        with pytest.raises(ConfigError, match=words):
            resolve(parse_url(f"mysql://u@h/app?{query}"))


def test_an_unknown_mysql_parameter_is_refused_in_one_line_naming_the_known_ones(golive, pg_url):
    res = golive("migrate", "db", "--source", "mysql://root@127.0.0.1:3306/test?ssl_moed=REQUIRED", "--target",
                 pg_url, "--dry-run")
    lines = [x for x in res.err.splitlines() if x.strip()]
    assert res.code == 2 and len(lines) == 1, res
    assert "unknown MySQL URL parameter 'ssl_moed'" in lines[0] and "ssl_mode" in lines[0] and "ssl_ca" in lines[0]


def test_mysql_tls_request_is_honoured_or_refused(mysql_admin_url, golive):
    """The machine's MariaDB has no TLS: REQUIRED (however spelled) fails in one line; DISABLED and PREFERRED
    connect (in plaintext, as they allow)."""
    base = _base(mysql_admin_url)
    tls = _server_has_tls(mysql_admin_url)
    for q in ("ssl_mode=DISABLED", "sslmode=disable", "ssl_mode=PREFERRED", "sslmode=prefer"):
        assert _current_user(f"{base}/test?{q}").startswith("root@")
    for q in ("ssl_mode=REQUIRED", "sslmode=require", "ssl=true"):
        if tls:  # a server with TLS: the connection is encrypted
            conn = _mysql_connect(f"{base}/test?{q}")
            with conn.cursor() as cur:
                cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                assert cur.fetchone()[1]
            conn.close()
            continue
        with pytest.raises(ConnectionFailed, match="asks for TLS and the server does not offer it"):
            _mysql_connect(f"{base}/test?{q}")
    if not tls:  # the command says so in one line, exit 2 (it used to report on a plaintext connection, exit 0)
        res = golive("report", "db", "--db", f"{base}/test?ssl_mode=REQUIRED", "--no-history")
        lines = [x for x in res.err.splitlines() if x.strip()]
        assert res.code == 2 and len(lines) == 1 and "does not offer it" in lines[0], res


def test_sqlalchemy_connections_carry_the_same_tls(mysql_admin_url):
    """Great Expectations and Alembic connect through SQLAlchemy: its URL asks for the same TLS."""
    import sqlalchemy

    from golive.dialects.mysql.session import sqlalchemy_url

    base = _base(mysql_admin_url)
    for q in ("ssl_mode=DISABLED", "ssl_mode=PREFERRED"):
        engine = sqlalchemy.create_engine(sqlalchemy_url(parse_url(f"{base}/test?{q}")))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        engine.dispose()
    if not _server_has_tls(mysql_admin_url):
        engine = sqlalchemy.create_engine(sqlalchemy_url(parse_url(f"{base}/test?ssl_mode=REQUIRED")))
        with pytest.raises(sqlalchemy.exc.OperationalError):
            engine.connect()
        engine.dispose()


# ---------------------------------------------------------------- MySQL credentials off the command line

@pytest.fixture
def pw_user(mysql_admin_url):
    """A MariaDB user with a password, and a database it owns; both dropped afterwards."""
    user = "gco_" + uuid.uuid4().hex[:8]
    _admin(mysql_admin_url, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'", f"CREATE DATABASE `{user}`",
           f"GRANT ALL ON `{user}`.* TO '{user}'@'%'",
           f"GRANT ALL ON `golive\\_verify\\_%`.* TO '{user}'@'%'")  # a backup's scratch databases
    yield user
    _admin(mysql_admin_url, f"DROP DATABASE IF EXISTS `{user}`", f"DROP USER IF EXISTS '{user}'@'%'")


def test_mysql_password_from_mysql_pwd_and_option_files(mysql_admin_url, pw_user, tmp_path, monkeypatch):
    url = f"mysql://{pw_user}@{_server(mysql_admin_url)}/{pw_user}"
    monkeypatch.delenv("MYSQL_PWD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.my.cnf yet
    with pytest.raises(ConnectionFailed, match="no password was given: put it in the URL, MYSQL_PWD, ~/.my.cnf"):
        _mysql_connect(url)
    # MYSQL_PWD
    monkeypatch.setenv("MYSQL_PWD", PASSWORD)
    assert _current_user(url).startswith(pw_user + "@")
    monkeypatch.setenv("MYSQL_PWD", "wrong-one")
    with pytest.raises(ConnectionFailed, match="the password came from MYSQL_PWD") as err:
        _mysql_connect(url)
    assert "wrong-one" not in str(err.value)
    monkeypatch.delenv("MYSQL_PWD")
    # a defaults file the URL names: user and password from its [client] group (quoted, with a comment)
    opt = tmp_path / "app.cnf"
    opt.write_text(f"# the app's credentials\n[client]\nuser = {pw_user}\npassword = \"{PASSWORD}\"  \n[mysqldump]\n"
                   "password = not-this-one\n")
    host = _server(mysql_admin_url)
    assert _current_user(f"mysql://{host}/{pw_user}?defaults_file={opt}").startswith(pw_user + "@")
    assert _current_user(f"mysql://{host}/{pw_user}?read_default_file={opt}").startswith(pw_user + "@")
    with pytest.raises(ConfigError, match="no such file"):
        _mysql_connect(f"mysql://{host}/{pw_user}?defaults_file={tmp_path / 'none.cnf'}")
    # ~/.my.cnf, its [mysql] group after [client]
    (tmp_path / ".my.cnf").write_text(f"[client]\npassword=wrong\n[mysql]\npassword={PASSWORD}\n")
    assert _current_user(url).startswith(pw_user + "@")


def test_cli_takes_a_mysql_password_from_an_option_file(golive, mysql_admin_url, pw_user, tmp_path):
    """The password is nowhere on the command line, and nowhere in what golive prints."""
    opt = tmp_path / "client.cnf"
    opt.write_text(f"[client]\npassword={PASSWORD}\n")
    _admin(mysql_admin_url, f"CREATE TABLE `{pw_user}`.t (id INT PRIMARY KEY, v VARCHAR(10))",
           f"INSERT INTO `{pw_user}`.t VALUES (1, 'a'), (2, 'b')")
    res = golive("backup", "--db", f"mysql://{pw_user}@{_server(mysql_admin_url)}/{pw_user}?defaults_file={opt}",
                 "--to", f"file://{tmp_path}/b")
    assert res.code == 0 and "verification passed" in res.out, res
    assert PASSWORD not in res.all


# ---------------------------------------------------------------- PostgreSQL: libpq's own reasons

def _pg_ssl(pg_admin_url: str) -> bool:
    with psycopg.connect(pg_admin_url) as conn:
        return conn.execute("SHOW ssl").fetchone()[0] == "on"


def test_postgresql_tls_failures_keep_libpqs_reason(pg_admin_url):
    from golive.dialects.postgresql.session import connect

    sep = "&" if "?" in pg_admin_url else "?"
    with pytest.raises(ConnectionFailed) as err:
        connect(parse_url(f"{pg_admin_url}{sep}sslmode=sometimes"), role="database")
    msg = str(err.value)
    assert 'invalid sslmode value: "sometimes"' in msg and "verify-full" in msg and "\n" not in msg
    if not _pg_ssl(pg_admin_url):
        with pytest.raises(ConnectionFailed) as err:
            connect(parse_url(f"{pg_admin_url}{sep}sslmode=require"), role="database")
        msg = str(err.value)
        assert "server does not support SSL, but SSL was required" in msg and "ssl = off" in msg, msg
    else:  # TLS on: encrypted without verification; verify-full without a CA names the missing root certificate
        connect(parse_url(f"{pg_admin_url}{sep}sslmode=require"), role="database").close()
        with pytest.raises(ConnectionFailed, match="root certificate file .* does not exist.*sslrootcert"):
            connect(parse_url(f"{pg_admin_url}{sep}sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
                    role="database")
    assert "SSL negotiation failed" not in msg
    with pytest.raises(ConfigError, match="sslmood"):
        connect(parse_url(f"{pg_admin_url}{sep}sslmood=require"), role="database")


# ---------------------------------------------------------------- a throwaway MariaDB with TLS

@pytest.fixture(scope="module")
def tls_mariadb(tmp_path_factory):
    """A MariaDB of its own (the machine's has no TLS, and its settings are left alone) with a certificate signed by
    a test CA for 127.0.0.1; yields (URL without parameters, CA path); stopped and removed afterwards."""
    import shutil
    import socket
    import subprocess
    import time

    mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    install = shutil.which("mariadb-install-db")
    if not (mariadbd and install and shutil.which("openssl")):
        pytest.skip("needs mariadbd, mariadb-install-db and openssl")
    d = tmp_path_factory.mktemp("tls-mariadb")
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=golive test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    run(install, "--no-defaults", f"--datadir={d / 'data'}", "--auth-root-authentication-method=normal",
        "--skip-test-db", "--user=root")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(d / "server.log", "wb")
    proc = subprocess.Popen([mariadbd, "--no-defaults", f"--datadir={d / 'data'}", f"--socket={d / 'sock'}",
                             f"--port={port}", "--bind-address=127.0.0.1", "--user=root", "--skip-log-bin",
                             "--innodb-buffer-pool-size=16M", "--local-infile=1", f"--ssl-ca={d / 'ca.pem'}",
                             f"--ssl-cert={d / 'server.pem'}", f"--ssl-key={d / 'server.key'}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"ready for connections" not in (d / "server.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the throwaway MariaDB did not start:\n" + (d / "server.log").read_text()[-2000:])
            time.sleep(0.1)
        yield f"mysql://root@127.0.0.1:{port}", str(d / "ca.pem")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _cipher(url: str) -> str:
    conn = _mysql_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            return cur.fetchone()[1]
    finally:
        conn.close()


def test_a_tls_request_gets_tls_verified_as_asked(tls_mariadb):
    base, ca = tls_mariadb
    for q in ("ssl_mode=REQUIRED", "sslmode=require", "ssl_mode=PREFERRED", f"ssl_ca={ca}",
              f"ssl_mode=VERIFY_CA&ssl_ca={ca}", f"sslmode=verify-full&sslrootcert={ca}"):
        assert _cipher(f"{base}/mysql?{q}"), q
    assert _cipher(f"{base}/mysql?ssl_mode=DISABLED") == ""
    # verification against the system's CAs: the test CA is not one of them, said in one line
    with pytest.raises(ConnectionFailed, match="certificate failed verification .*give the CA that signed it"):
        _mysql_connect(f"{base}/mysql?ssl_mode=VERIFY_CA")


def test_tls_reaches_the_client_programs_and_sqlalchemy(tls_mariadb, tmp_path):
    """The same TLS for mariadb-dump and mariadb (a backup and its verification) and for SQLAlchemy."""
    import sqlalchemy
    from pydantic import SecretStr

    from golive.backup import BackupOptions, VerifyOptions, backup_database, verify_backup
    from golive.dialects.mysql.session import sqlalchemy_url

    base, ca = tls_mariadb
    _admin(f"{base}/mysql", "CREATE DATABASE IF NOT EXISTS app", "CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY)",
           "REPLACE INTO app.t VALUES (1), (2)")
    url = f"{base}/app?ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}"
    engine = sqlalchemy.create_engine(sqlalchemy_url(parse_url(url)))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").fetchone()[1]
    engine.dispose()
    done = backup_database(url, f"file://{tmp_path}/b", BackupOptions())
    verified = verify_backup(done.url, VerifyOptions(own_server=SecretStr(url)))  # scratch: the same server, TLS
    assert verified.ok, verified.verification.problems

