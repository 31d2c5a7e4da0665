"""DownstreamUrl: https://, or http:// only to a loopback host. The template's AllowedPattern
(checked by CloudFormation before deploy) and the function's config (checked at the cold start)
accept and refuse the same URLs."""

from __future__ import annotations

import pytest

from local.aws.moto_stack import sam_template
from local.aws.template import ParameterError, resolved_parameters
from shared.config import Config
from shared.errors import ConfigurationError

DEAD_LETTER_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"

ACCEPTED = [
    "https://downstream.example.com/messages",
    "https://downstream.example.com",
    "https://10.0.0.7:8443/messages?tenant=a",
    "http://127.0.0.1:9/unset",
    "http://127.0.0.1",
    "http://127.255.255.254:8080/m",
    "http://localhost:8080/messages",
    "http://localhost?probe=1",
    "http://[::1]:8080/messages",
    "http://user:s3cr3t@127.0.0.1:9/messages?token=t0ken",
]
REFUSED = [
    # plain http to anything but loopback
    "http://downstream.example.com/messages",
    "http://10.0.0.7/messages",
    "http://0.0.0.0:8080/",
    "http://128.0.0.1/",
    "http://[::ffff:127.0.0.1]/",
    # names and userinfo that only look like loopback
    "http://localhost.example.com/",
    "http://127.0.0.1.example.com/",
    "http://127.0.0.1@downstream.example.com/",
    "http://localhost:8080@downstream.example.com/",
    "http://127.0.0.256/",
    "http://127.0.0.01/",
    # not http at all
    "ftp://files.example.com/",
    "https:///no-host",
    "downstream.example.com/messages",
]


def template_accepts(url: str) -> bool:
    try:
        resolved_parameters(sam_template(), {"DownstreamUrl": url})
    except ParameterError as error:
        if "DownstreamUrl" not in str(error):
            raise
        return False
    return True


def function_accepts(url: str) -> bool:
    try:
        Config.from_environ({"DOWNSTREAM_URL": url, "DEAD_LETTER_QUEUE_URL": DEAD_LETTER_QUEUE_URL})
    except ConfigurationError as error:
        if "DOWNSTREAM_URL" not in str(error):
            raise
        return False
    return True


@pytest.mark.parametrize("url", ACCEPTED)
def test_https_and_loopback_http_are_accepted_by_both(url: str) -> None:
    # Given an https URL or an http one on a loopback address, When the template's pattern and the
    # function's configuration check it, Then both accept it
    assert (template_accepts(url), function_accepts(url)) == (True, True)


@pytest.mark.parametrize("url", REFUSED)
def test_other_urls_are_refused_by_both(url: str) -> None:
    # Given any other URL, When both check it, Then both refuse it
    assert (template_accepts(url), function_accepts(url)) == (False, False)


def test_the_template_says_why() -> None:
    # Given the DownstreamUrl parameter
    parameter = sam_template()["Parameters"]["DownstreamUrl"]
    # Then its constraint description says why, and it has no default
    assert "loopback" in parameter["ConstraintDescription"]
    assert "Default" not in parameter  # required: no deployment without choosing a downstream
