"""The PostgreSQL the tests run against is a real server: SQL, transactions, isolation."""

import psycopg


def test_each_test_gets_its_own_real_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        version = connection.execute("SHOW server_version_num").fetchone()
        assert version is not None and int(version[0]) >= 150000
        connection.execute("CREATE TABLE probe (n int PRIMARY KEY)")
        connection.execute("INSERT INTO probe VALUES (1)")
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT count(*) FROM probe").fetchone() == (1,)
