"""The suite-wide guard: a test cannot connect past loopback or ask DNS about a name."""

from __future__ import annotations

import socket

import pytest

from index.ingestion.fetch import Fetcher
from index.ingestion.urls import system_resolver


@pytest.mark.parametrize("address", [("10.0.0.1", 80), ("93.184.216.34", 443), ("example.org", 80), ("169.254.169.254", 80)])
def test_connections_past_loopback_fail_the_test_before_a_packet_is_sent(address):
    with pytest.raises(pytest.fail.Exception, match="tried to connect"):
        socket.create_connection(address, timeout=0.1)


@pytest.mark.parametrize("name", ["example.org", "metadata.google.internal", "attacker.example"])
def test_dns_questions_about_names_fail_the_test(name):
    with pytest.raises(pytest.fail.Exception, match="asked DNS"):
        system_resolver(name, 80)


def test_a_broken_guard_still_could_not_reach_a_private_address(monkeypatch):
    # Simulate the SSRF check letting everything through: the connection guard still stops it.
    monkeypatch.setattr("index.ingestion.urls.address_problem", lambda address, allow_loopback=False: None)
    with pytest.raises(pytest.fail.Exception, match="tried to connect to 10.0.0.1"):
        Fetcher().fetch("http://10.0.0.1/")
