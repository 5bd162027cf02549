"""The alert settings form: input only (the webhook URL is checked by the service, through the egress guard)."""

from django import forms

from alerts.models import CHOOSABLE_EVENTS


class AlertSettingsForm(forms.Form):
    email_enabled = forms.BooleanField(label="Send alerts by e-mail", required=False)
    email = forms.EmailField(label="E-mail address", required=False,
                             help_text="Leave blank to use your account's address.")
    webhook_enabled = forms.BooleanField(label="Send alerts to a webhook", required=False)
    webhook_url = forms.CharField(
        label="Webhook URL", required=False, max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.slack.com/services/…", "spellcheck": "false"}),
        help_text="A Slack incoming webhook, or any receiver of Slack-compatible JSON. https only, public addresses "
        "only.")
    events = forms.MultipleChoiceField(label="Alert me when", choices=CHOOSABLE_EVENTS, required=False,
                                       widget=forms.CheckboxSelectMultiple)
