"""The egress policy itself: addresses, allow-list entries, names, DNS rebinding, TLS."""

from __future__ import annotations

import ipaddress

import pytest

from responders.config import ResponderSettings
from responders.egress import (
    AllowEntry,
    not_public,
)


class TestAddresses:
    @pytest.mark.parametrize(
        ("address", "expected"),
        [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:7f00:1", "loopback"),
            ("::127.0.0.1", "loopback"),
            ("2002:7f00:1::", "loopback"),
            ("169.254.169.254", "link-local"),
            ("::ffff:169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("2001:db8::1", "private"),
            ("2002:a00:1::", "private"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("::ffff:10.0.0.1", "private"),
            ("fd00::1", "private"),
            ("fc00::1", "private"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("100.64.0.1", "non-public"),
            ("64:ff9b::7f00:1", "reserved"),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("2606:4700::1111", None),
            ("::ffff:8.8.8.8", None),
        ],
    )
    def test_what_is_not_public(self, address: str, expected: str | None) -> None:
        """Loopback, link-local, private, unspecified, multicast, reserved and shared addresses are not public, also inside IPv6."""
        assert expected == not_public(ipaddress.ip_address(address))


class TestAllowEntries:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("127.0.0.1", AllowEntry(network=ipaddress.ip_network("127.0.0.1/32"))),
            ("10.20.0.0/16", AllowEntry(network=ipaddress.ip_network("10.20.0.0/16"))),
            ("::1", AllowEntry(network=ipaddress.ip_network("::1/128"))),
            ("fd00::/8", AllowEntry(network=ipaddress.ip_network("fd00::/8"))),
            ("127.0.0.1:8781", AllowEntry(network=ipaddress.ip_network("127.0.0.1/32"), port=8781)),
            ("[::1]:8443", AllowEntry(network=ipaddress.ip_network("::1/128"), port=8443)),
            ("Pager.Internal", AllowEntry(host="pager.internal")),
            ("pager.internal:8443", AllowEntry(host="pager.internal", port=8443)),
            ("localhost", AllowEntry(host="localhost")),
            ("Bücher.example", AllowEntry(host="xn--bcher-kva.example")),
        ],
    )
    def test_entries_parse(self, text: str, expected: AllowEntry) -> None:
        """Host names, addresses and CIDR blocks, each optionally with a port."""
        assert expected == AllowEntry.parse(text)

    @pytest.mark.parametrize(
        "text", ["", "bad host", "http://pager.internal", "pager.internal:0", "pager.internal:x", "[::1", "10.0.0.0/33"]
    )
    def test_invalid_entries_stop_the_settings(self, text: str) -> None:
        """An entry that is none of those is a settings error naming it."""
        with pytest.raises(ValueError, match="egress_allow entry") as caught:
            ResponderSettings(egress_allow=[text])
        assert repr(text) in str(caught.value)

    def test_environment_variable_is_a_json_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OFFHOURS_RESPONDERS__EGRESS_ALLOW takes a JSON list."""
        from streams.settings import Settings

        monkeypatch.setenv("OFFHOURS_RESPONDERS__EGRESS_ALLOW", '["127.0.0.1", "10.0.0.0/8"]')
        assert ("127.0.0.1", "10.0.0.0/8") == Settings().responders.egress_allow

    def test_default_allows_nothing_local(self) -> None:
        """By default the allow-list is empty."""
        assert () == ResponderSettings().egress_allow

