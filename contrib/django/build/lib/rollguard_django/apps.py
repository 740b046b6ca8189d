from django.apps import AppConfig


class RollguardConfig(AppConfig):
    name = "rollguard_django"
    verbose_name = "rollguard"
