"""The rules for users' standard claims (OpenID Connect Core §5.1) that the CLI and the admin API share."""

import pytest

from oauth_service.oidc.profile_rules import ProfileError, check_profile


@pytest.mark.parametrize("tag", ["en", "en-US", "fr-CA", "zh-Hant-TW", "es-419", "haw"])
def test_bcp47_locales_are_accepted(tag: str) -> None:
    assert check_profile({"locale": tag}) == {"locale": tag}


@pytest.mark.parametrize("tag", ["en_US", "e", "english", "en-", "en-USA-x", "12"])
def test_other_locales_are_refused(tag: str) -> None:
    with pytest.raises(ProfileError, match=r"^locale must be a BCP 47 language tag"):
        check_profile({"locale": tag})


def test_values_are_trimmed_and_empty_or_none_clears() -> None:
    assert check_profile(
        {"name": "  Ann  ", "picture": "", "zoneinfo": None, "email_verified": False}
    ) == {"name": "Ann", "picture": None, "zoneinfo": None, "email_verified": False}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "a@example.com"}, "'email' is not a profile claim"),
        ({"email_verified": "yes"}, "email_verified must be true or false"),
        ({"name": 5}, "name must be a string"),
        ({"picture": "https:///no-host"}, "picture must be an http or https URL"),
        (
            {"picture": "https://a.example/" + "x" * 2048},
            "picture must be at most 2048",
        ),
        ({"zoneinfo": "europe/paris"}, "zoneinfo must be a time zone name"),
    ],
)
def test_rule_breaking_values_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        check_profile(changes)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
