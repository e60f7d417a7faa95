"""A user store for grants whose store step loads the user itself: any separate user read fails the test."""

from oauth_service.oauth.models import User, UserProfile


class NoUserReads:
    """Satisfies ``oauth.storage.UserStore``; every call is a test failure naming what was asked."""

    async def get(self, user_id: str) -> User | None:
        raise AssertionError(f"user {user_id} read separately")

    async def get_by_email(self, email: str) -> User | None:
        raise AssertionError(f"user {email} read separately")

    async def update_password_hash(
        self, user_id: str, password_hash: str, *, replacing: str
    ) -> None:
        raise AssertionError(
            f"password of {user_id} changed ({len(password_hash)}, {len(replacing)})"
        )

    async def profile(self, user_id: str) -> UserProfile | None:
        raise AssertionError(f"profile of {user_id} read by a grant")
