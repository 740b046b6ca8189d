"""rollguard for Django: the version's manifest from the models, and deploy steps.

Add "rollguard_django" to INSTALLED_APPS, then:

    python manage.py rollguard_manifest
    python manage.py rollguard_deploy --deployment mirror-2 --version 42
"""
