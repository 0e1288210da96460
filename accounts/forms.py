from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts.handles import HandleError
from accounts.models import User
from accounts.services import check_handle


class HandleField(forms.CharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_length=64, strip=True, **kwargs)  # type: ignore[arg-type]

    def clean(self, value: object) -> str:
        value = super().clean(value)
        try:
            return check_handle(value).display
        except HandleError as exc:
            raise forms.ValidationError(str(exc)) from exc


class SignUpForm(UserCreationForm):
    handle = HandleField(
        label="Public handle", help_text="The only name others see. 3 to 24 characters; not your real name."
    )
    kind = forms.ChoiceField(label="Why are you here?", choices=User.Kind.choices, widget=forms.RadioSelect)
    email = forms.EmailField(
        label="Email (optional)",
        required=False,
        help_text="Only for resetting your password. Never shown to anyone.",
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)
        labels = {"username": "Private username"}
        help_texts = {"username": "Used only to sign in. Nobody else sees it."}


class GuestForm(forms.Form):
    handle = HandleField(label="Your handle for today")
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class DeleteAccountForm(forms.Form):
    password = forms.CharField(label="Your password, to confirm", widget=forms.PasswordInput, strip=False)
    confirm = forms.BooleanField(label="I understand this can't be undone.")

    def __init__(self, *args: object, user: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):  # type: ignore[attr-defined]
            raise forms.ValidationError("That password isn't right.")
        return password
