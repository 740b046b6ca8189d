"""Tag every database connection with the deployment and version it runs.

In settings.py, after DATABASES:

    from rollguard_django.tags import tag_databases
    tag_databases(DATABASES)

Each connection then says which deployment and build it belongs to, and
while it is connected rollguard counts that version as live for that
deployment (doc/sessions-and-observed.md, "Live sessions"), beside what the
deploy steps recorded.  Where the names come from, by default:

    deployment   $DEPLOYMENT, else "mirror-$SITE_ID" (as contrib/deploy/divio_mirror.sh)
    version      $VERSION, the build's label (the one manage.py rollguard_deploy registers)

Without both, nothing is tagged (a developer's machine, a test run), unless
required=True, which raises ImproperlyConfigured instead.

Two forms (doc/sessions-and-observed.md):
    form="options"           OPTIONS["options"] gets
                             "-c rollguard.deployment=... -c rollguard.version=..."
                             (the default: no length limit, any label)
    form="application_name"  OPTIONS["application_name"] = "rollguard:DEPLOYMENT@VERSION"
                             (passes through PgBouncer in transaction mode, which
                             drops startup options; at most 63 bytes, ASCII)

With ROLLGUARD_OBSERVE=off in the environment (contrib/deploy/divio_mirror.sh
sets it for the migration), the connection also gets -c rollguard.observe=off:
a data migration's reads of an old column are not recorded as uses by the
new version.
"""
import os

from django.core.exceptions import ImproperlyConfigured

PREFIX = "rollguard:"
MAX_LABEL = 200           # bytes, as the server's label check
MAX_APPLICATION_NAME = 63  # bytes PostgreSQL keeps (NAMEDATALEN - 1)


def environment_tag(environ=None):
    """(deployment, version) from the environment; None for either one missing."""
    env = os.environ if environ is None else environ
    deployment = env.get("DEPLOYMENT") or None
    if deployment is None and env.get("SITE_ID"):
        deployment = "mirror-%s" % env["SITE_ID"]
    return deployment, env.get("VERSION") or None


def check_label(what, value):
    """The server's rules for a label (it would refuse the connection otherwise)."""
    if not isinstance(value, str) or value == "":
        raise ImproperlyConfigured("rollguard: the %s must be a non-empty string" % what)
    if len(value.encode("utf-8")) > MAX_LABEL:
        raise ImproperlyConfigured("rollguard: the %s %r is longer than %d bytes" % (what, value, MAX_LABEL))
    if value != value.strip():
        raise ImproperlyConfigured("rollguard: the %s %r has leading or trailing white space" % (what, value))
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ImproperlyConfigured("rollguard: the %s %r has control characters" % (what, value))
    return value


def option_word(text):
    """One word of libpq's options string: space and backslash escaped."""
    return text.replace("\\", "\\\\").replace(" ", "\\ ")


def tag_options(deployment, version, observe=True):
    words = ["-c", option_word("rollguard.deployment=" + deployment),
             "-c", option_word("rollguard.version=" + version)]
    if not observe:
        words += ["-c", "rollguard.observe=off"]
    return " ".join(words)


def application_name(deployment, version):
    name = "%s%s@%s" % (PREFIX, deployment, version)
    if not all(32 <= ord(c) < 127 for c in name):
        raise ImproperlyConfigured(
            "rollguard: application_name %r is not printable ASCII; PostgreSQL would change it "
            "(use form=\"options\")" % name)
    if len(name) > MAX_APPLICATION_NAME:
        raise ImproperlyConfigured(
            "rollguard: application_name %r is longer than %d bytes; PostgreSQL would cut it "
            "(use shorter labels, or form=\"options\")" % (name, MAX_APPLICATION_NAME))
    return name


def tag_databases(databases, deployment=None, version=None, form="options", aliases=None,
                  required=False, environ=None):
    """Tags the PostgreSQL entries of DATABASES (all, or those in aliases) in place.

    deployment and version default to the environment (environment_tag()).
    Returns (deployment, version), or None when nothing was tagged.
    """
    env = os.environ if environ is None else environ
    env_deployment, env_version = environment_tag(env)
    deployment = deployment or env_deployment
    version = version or env_version
    if deployment is None or version is None:
        if required:
            raise ImproperlyConfigured(
                "rollguard: cannot tag the database connections: set DEPLOYMENT (or SITE_ID) "
                "and VERSION in the environment")
        return None
    check_label("deployment name", deployment)
    check_label("version label", version)
    if form not in ("options", "application_name"):
        raise ImproperlyConfigured('rollguard: form must be "options" or "application_name", not %r' % form)
    observe = env.get("ROLLGUARD_OBSERVE", "on").lower() not in ("off", "false", "0", "no")
    for alias, entry in databases.items():
        if aliases is not None and alias not in aliases:
            continue
        if "postgresql" not in entry.get("ENGINE", ""):
            continue
        options = entry.setdefault("OPTIONS", {})
        if form == "options":
            extra = tag_options(deployment, version, observe)
            options["options"] = (options["options"] + " " + extra) if options.get("options") else extra
        else:
            name = options.get("application_name")
            if name and not name.startswith(PREFIX):
                raise ImproperlyConfigured(
                    "rollguard: DATABASES[%r] already has the application_name %r" % (alias, name))
            options["application_name"] = application_name(deployment, version)
            if not observe:
                extra = "-c rollguard.observe=off"
                options["options"] = (options["options"] + " " + extra) if options.get("options") else extra
    return deployment, version
