/*-------------------------------------------------------------------------
 * sessions.c
 *		Live tagged sessions: application connections that say which
 *		deployment and version they run count as live evidence.
 *
 * A session tags itself in one of two ways:
 *
 *	- the settings rollguard.deployment and rollguard.version (connection
 *	  options, ALTER ROLE ... SET, or SET).  When both are set, the backend
 *	  publishes them in its own slot of a shared-memory array (one slot per
 *	  backend), and clears the slot when either is reset or the backend
 *	  exits.  Setting them costs one spinlock; statements cost nothing.
 *	- application_name = 'rollguard:<deployment>@<version>' (split at the
 *	  last '@'), which connection poolers pass through.  It is not stored:
 *	  it is read from the backend status array when a statement is checked.
 *
 * DDL checks and the rollguard.sessions view read every session's tags;
 * observed usage (observed.c) reads this session's own, through
 * rg_session_tags(), on every statement: that is cached.
 *
 * A tag is evidence only if the session's login role may provide it: a
 * member of rollguard_tag, or a superuser (rg_role_may_tag()).  Anyone may
 * set a tag, but the guard and the observer ignore the others' (the view
 * shows them, as not trusted).  The slot keeps the session user, which
 * SET SESSION AUTHORIZATION may change: it is refreshed at each statement.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "port/atomics.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "compat.h"
#include "rollguard.h"

/* The application_name form of the tag. */
#define APPNAME_PREFIX "rollguard:"

/* One backend's tags; pid 0 when the slot is free. */
typedef struct SessionSlot
{
	slock_t		mutex;
	int			pid;
	Oid			dboid;
	Oid			userid;			/* the session's login role */
	char		deployment[RG_LABEL_MAX + 1];
	char		version[RG_LABEL_MAX + 1];
} SessionSlot;

typedef struct SessionArray
{
	int			nslots;
	/* client backends whose application_name has the tag's prefix now */
	pg_atomic_uint32 appname_tagged;
	SessionSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SessionArray;

static SessionArray *session_array = NULL;

/* The settings. */
static char *rg_deployment = NULL;
static char *rg_version = NULL;

/* Our slot, once we have published tags in it. */
static SessionSlot *published_slot = NULL;
static bool exit_callback_registered = false;

/*
 * This session's own tags, as rg_session_tags() last computed them: valid
 * until a tag setting is assigned or application_name differs from
 * tags_appname.  Strings live in tags_cxt, reset at each recomputation.
 */
static RgSessionTags own_tags;
static bool own_tags_valid = false;
static char *tags_appname = NULL;
static MemoryContext tags_cxt = NULL;

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

static bool parse_appname(const char *appname, char **deployment, char **version);

/* Whether this backend counts itself in appname_tagged. */
static bool appname_counted = false;

PG_FUNCTION_INFO_V1(rollguard_sessions);

static Size
session_array_size(void)
{
	return add_size(offsetof(SessionArray, slots),
					mul_size(RG_MAX_BACKENDS(), sizeof(SessionSlot)));
}

/*
 * What is wrong with a deployment name or version label (NULL if nothing),
 * as a DETAIL sentence, with the SQLSTATE to report.  The rule is
 * rg_label_check()'s (label.c), the one rollguard._check_label() applies.
 */
static const char *
label_problem(const char *what, const char *label, int *sqlstate)
{
	RgLabelCheck check = rg_label_check(label);

	*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
	switch (check.problem)
	{
		case RG_LABEL_OK:
			return NULL;
		case RG_LABEL_EMPTY:
			return psprintf("A %s must not be empty.", what);
		case RG_LABEL_TOO_LONG:
			*sqlstate = ERRCODE_NAME_TOO_LONG;
			return psprintf("It is %d bytes long; the limit is %d bytes.",
							check.length, RG_LABEL_MAX);
		case RG_LABEL_BAD_ENCODING:
			*sqlstate = ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
			return psprintf("It is not valid in encoding \"%s\".", GetDatabaseEncodingName());
		case RG_LABEL_CONTROL:
			return psprintf("It contains a control character: U+%04X at position %d.",
							(unsigned int) check.character, check.position);
		case RG_LABEL_BLANK_END:
			return psprintf("A %s must not begin or end with white space.", what);
	}
	pg_unreachable();
}

/* Check hook of both settings (the boot value, '', means untagged). */
static bool
check_tag(char **newval, const char *name, const char *what)
{
	const char *problem;
	int			sqlstate;

	problem = label_problem(what, *newval, &sqlstate);
	if (problem == NULL)
		return true;
	GUC_check_errcode(sqlstate);
	GUC_check_errmsg("invalid value for parameter \"%s\"", name);
	GUC_check_errdetail("%s", problem);
	if (**newval == '\0')
		GUC_check_errhint("To remove the tag, use RESET %s.", name);
	return false;
}

static bool
check_deployment(char **newval, void **extra, GucSource source)
{
	if (source == PGC_S_DEFAULT)
		return true;
	return check_tag(newval, "rollguard.deployment", "deployment name");
}

static bool
check_version(char **newval, void **extra, GucSource source)
{
	if (source == PGC_S_DEFAULT)
		return true;
	return check_tag(newval, "rollguard.version", "version label");
}

static SessionSlot *
my_slot(void)
{
	int			index = RG_MY_SLOT_INDEX();

	if (session_array == NULL || index < 0 || index >= session_array->nslots)
		return NULL;
	return &session_array->slots[index];
}

/*
 * Clears our slot (the tag is dropped, or the backend ends): the moment a
 * tagged session of the deployment was last connected (liveness.c).
 */
static void
clear_slot(int code, Datum arg)
{
	SessionSlot *slot = published_slot;
	char		deployment[RG_LABEL_MAX + 1];
	Oid			dboid = InvalidOid;
	Oid			userid = InvalidOid;

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	if (slot->pid == MyProcPid)
	{
		slot->pid = 0;
		dboid = slot->dboid;
		userid = slot->userid;
		memcpy(deployment, slot->deployment, sizeof(deployment));
	}
	SpinLockRelease(&slot->mutex);
	published_slot = NULL;
	if (OidIsValid(dboid))
		rg_liveness_stamp(dboid, userid, deployment);
}

/*
 * Publishes this backend's tags, or clears its slot unless both are set.
 * Called from the settings' assign hooks (which must not fail), with the
 * value about to be assigned and the other setting's current value.
 * Only client backends connected to a database are tagged: not the
 * postmaster (postgresql.conf), nor parallel workers (they inherit their
 * leader's settings), autovacuum or other background processes.
 */
static void
publish(const char *deployment, const char *version)
{
	SessionSlot *slot;

	if (MyBackendType != B_BACKEND || !OidIsValid(MyDatabaseId) ||
		(slot = my_slot()) == NULL)
		return;
	if (deployment == NULL || version == NULL || *deployment == '\0' || *version == '\0')
	{
		clear_slot(0, 0);
		return;
	}
	if (!exit_callback_registered)
	{
		on_shmem_exit(clear_slot, 0);
		exit_callback_registered = true;
	}
	/* a tag replaced by another: the old one was connected until now */
	if (published_slot == slot && slot->pid == MyProcPid &&
		strcmp(slot->deployment, deployment) != 0)
		rg_liveness_stamp(slot->dboid, slot->userid, slot->deployment);
	SpinLockAcquire(&slot->mutex);
	slot->pid = MyProcPid;
	slot->dboid = MyDatabaseId;
	slot->userid = GetSessionUserId();
	strlcpy(slot->deployment, deployment, sizeof(slot->deployment));
	strlcpy(slot->version, version, sizeof(slot->version));
	SpinLockRelease(&slot->mutex);
	published_slot = slot;
	/* when a tagged session of the deployment was last connected */
	rg_liveness_stamp(MyDatabaseId, GetSessionUserId(), deployment);
}

static void
assign_deployment(const char *newval, void *extra)
{
	publish(newval, rg_version);
	own_tags_valid = false;
}

static void
assign_version(const char *newval, void *extra)
{
	publish(rg_deployment, newval);
	own_tags_valid = false;
}

void
rg_sessions_define_settings(void)
{
	/* Harmless per-session tags: anyone may set them (PGC_USERSET). */
	DefineCustomStringVariable("rollguard.deployment",
							   "The deployment this session's application code belongs to.",
							   "With rollguard.version set too, a connected session counts as live evidence that the deployment runs that version.",
							   &rg_deployment,
							   "",
							   PGC_USERSET,
							   0,
							   check_deployment, assign_deployment, NULL);
	DefineCustomStringVariable("rollguard.version",
							   "The version of the application code this session runs.",
							   "With rollguard.deployment set too, a connected session counts as live evidence that the deployment runs this version.",
							   &rg_version,
							   "",
							   PGC_USERSET,
							   0,
							   check_version, assign_version, NULL);
}

/* The shared memory it needs (from the module's shmem_request_hook). */
void
rg_sessions_shmem_request(void)
{
	RequestAddinShmemSpace(session_array_size());
}

/* Sets it up (from the module's shmem_startup_hook). */
void
rg_sessions_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	session_array = ShmemInitStruct("rollguard sessions", session_array_size(), &found);
	if (!found)
	{
		session_array->nslots = RG_MAX_BACKENDS();
		pg_atomic_init_u32(&session_array->appname_tagged, 0);
		for (int i = 0; i < session_array->nslots; i++)
		{
			SpinLockInit(&session_array->slots[i].mutex);
			session_array->slots[i].pid = 0;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Reading other sessions' application_name takes a snapshot of every
 * backend's status (pgstat), which costs more than the rest of a check.
 * So each client backend counts itself in appname_tagged while its
 * application_name has the tag's prefix, and the guard reads the status of
 * other backends only when someone is counted.  A backend notices its own
 * application_name when it connects (from the startup packet) and at each
 * statement (a SET application_name counts from the statement after it).
 */
static void
uncount_appname(int code, Datum arg)
{
	if (appname_counted && session_array != NULL)
		pg_atomic_fetch_sub_u32(&session_array->appname_tagged, 1);
	appname_counted = false;
}

static void
note_appname(const char *appname)
{
	static bool exit_registered = false;
	bool		tagged;

	if (session_array == NULL || MyBackendType != B_BACKEND)
		return;
	tagged = appname != NULL &&
		strncmp(appname, APPNAME_PREFIX, strlen(APPNAME_PREFIX)) == 0;
	if (tagged == appname_counted)
		return;
	if (!exit_registered)
	{
		on_shmem_exit(uncount_appname, 0);
		exit_registered = true;
	}
	if (tagged)
		pg_atomic_fetch_add_u32(&session_array->appname_tagged, 1);
	else
		pg_atomic_fetch_sub_u32(&session_array->appname_tagged, 1);
	appname_counted = tagged;
}

/*
 * The application_name form of the tag, for liveness.c: the deployment it
 * names (stamped when the tag appears, changes, disappears, and when the
 * backend ends), and the application_name it was taken from.  Noticed at
 * each statement, at the cost of one strcmp.
 */
static char *stamped_appname = NULL;
static char stamped_deployment[RG_LABEL_MAX + 1] = "";
static Oid	stamped_userid = InvalidOid;

static void
stamp_appname_at_exit(int code, Datum arg)
{
	if (stamped_deployment[0] != '\0')
		rg_liveness_stamp(MyDatabaseId, stamped_userid, stamped_deployment);
}

static void
note_appname_tag(const char *appname)
{
	char	   *deployment;
	char	   *version;

	if (stamped_appname != NULL && strcmp(stamped_appname, appname) == 0)
		return;
	if (MyBackendType != B_BACKEND || !OidIsValid(MyDatabaseId))
		return;
	if (stamped_appname == NULL)
		on_shmem_exit(stamp_appname_at_exit, 0);
	else
		pfree(stamped_appname);
	stamped_appname = MemoryContextStrdup(TopMemoryContext, appname);
	/* the tag it replaces was connected until now */
	if (stamped_deployment[0] != '\0')
		rg_liveness_stamp(MyDatabaseId, stamped_userid, stamped_deployment);
	stamped_deployment[0] = '\0';
	if (parse_appname(appname, &deployment, &version))
	{
		strlcpy(stamped_deployment, deployment, sizeof(stamped_deployment));
		stamped_userid = GetSessionUserId();
		rg_liveness_stamp(MyDatabaseId, stamped_userid, stamped_deployment);
	}
}

/* At each statement (the guard's and the observer's hooks). */
void
rg_sessions_note_appname(void)
{
	note_appname(application_name);
	note_appname_tag(application_name ? application_name : "");
	/* SET SESSION AUTHORIZATION changes whose tag it is */
	if (published_slot != NULL && published_slot->userid != GetSessionUserId())
	{
		SpinLockAcquire(&published_slot->mutex);
		if (published_slot->pid == MyProcPid)
			published_slot->userid = GetSessionUserId();
		SpinLockRelease(&published_slot->mutex);
	}
}

/*
 * May this role's sessions provide evidence (their tags count as live,
 * their uses are recorded)?  Superusers, and members of rollguard_tag
 * (with its privileges: GRANT rollguard_tag TO app).  With SQL scripts
 * older than 1.6, which have no such role, every session may (as then).
 * In a transaction.
 */
bool
rg_role_may_tag(Oid roleid)
{
	Oid			tag_role;

	if (rg_api_version() < RG_API_1_6)
		return true;
	if (!OidIsValid(roleid))
		return false;
	if (superuser_arg(roleid))
		return true;
	tag_role = get_role_oid("rollguard_tag", true);
	return OidIsValid(tag_role) && has_privs_of_role(roleid, tag_role);
}

/*
 * rg_role_may_tag() of this session's login role, kept until a role or
 * membership changes, the session user changes, or an invalidation that
 * may be ALTER EXTENSION UPDATE arrives.
 */
static bool trusted_valid = false;
static bool trusted_value = false;
static Oid	trusted_userid = InvalidOid;

static void
invalidate_trusted(Datum arg, int cacheid, uint32 hashvalue)
{
	trusted_valid = false;
}

static void
invalidate_trusted_rel(Datum arg, Oid relid)
{
	trusted_valid = false;
}

bool
rg_session_trusted(void)
{
	static bool callbacks = false;

	if (!callbacks)
	{
		CacheRegisterSyscacheCallback(AUTHOID, invalidate_trusted, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, invalidate_trusted, (Datum) 0);
		CacheRegisterRelcacheCallback(invalidate_trusted_rel, (Datum) 0);
		callbacks = true;
	}
	if (!trusted_valid || trusted_userid != GetSessionUserId())
	{
		trusted_userid = GetSessionUserId();
		trusted_value = rg_role_may_tag(trusted_userid);
		trusted_valid = true;
	}
	return trusted_value;
}

/* At connection: the startup packet's application_name, or an -c option. */
static void
sessions_client_auth(Port *port, int status)
{
	ListCell   *lc;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK)
		return;
	note_appname(port->application_name);
	/* guc_options: name, value, name, value, ... */
	for (lc = list_head(port->guc_options); lc != NULL && lnext(port->guc_options, lc) != NULL;
		 lc = lnext(port->guc_options, lnext(port->guc_options, lc)))
	{
		if (strcmp(lfirst(lc), "application_name") == 0)
			note_appname(lfirst(lnext(port->guc_options, lc)));
	}
}

/* From _PG_init, when preloaded. */
void
rg_sessions_install_hooks(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = sessions_client_auth;
}

/* 'rollguard:<deployment>@<version>' (split at the last '@'), or false. */
static bool
parse_appname(const char *appname, char **deployment, char **version)
{
	const char *rest;
	const char *at;
	int			sqlstate;

	if (appname == NULL || strncmp(appname, APPNAME_PREFIX, strlen(APPNAME_PREFIX)) != 0)
		return false;
	rest = appname + strlen(APPNAME_PREFIX);
	at = strrchr(rest, '@');
	if (at == NULL)
		return false;
	*deployment = pnstrdup(rest, at - rest);
	*version = pstrdup(at + 1);
	return label_problem("deployment name", *deployment, &sqlstate) == NULL &&
		label_problem("version label", *version, &sqlstate) == NULL;
}

/*
 * This session's tags now, or NULL if it has none: the settings' tag if it
 * is published (the tag rollguard.sessions shows), then the
 * application_name form; one entry if both name the same version.  Cheap
 * enough for every statement: recomputed only after a tag setting was
 * assigned or application_name changed (one strcmp otherwise).  generation
 * changes with every recomputation.  Valid until the next call.
 */
const RgSessionTags *
rg_session_tags(void)
{
	const char *appname = application_name ? application_name : "";
	MemoryContext old;
	char	   *deployment;
	char	   *version;

	if (MyBackendType != B_BACKEND || !OidIsValid(MyDatabaseId))
		return NULL;
	if (own_tags_valid && strcmp(appname, tags_appname) == 0)
		return own_tags.ntags > 0 ? &own_tags : NULL;

	if (tags_cxt == NULL)
		tags_cxt = AllocSetContextCreate(TopMemoryContext, "rollguard session tags",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(tags_cxt);
	old = MemoryContextSwitchTo(tags_cxt);
	own_tags.ntags = 0;
	own_tags.generation++;
	if (published_slot != NULL && rg_deployment != NULL && rg_version != NULL)
	{
		own_tags.deployment[0] = pstrdup(rg_deployment);
		own_tags.version[0] = pstrdup(rg_version);
		own_tags.ntags = 1;
	}
	if (parse_appname(appname, &deployment, &version) &&
		(own_tags.ntags == 0 || strcmp(own_tags.version[0], version) != 0))
	{
		own_tags.deployment[own_tags.ntags] = deployment;
		own_tags.version[own_tags.ntags] = version;
		own_tags.ntags++;
	}
	tags_appname = pstrdup(appname);
	own_tags_valid = true;
	MemoryContextSwitchTo(old);
	return own_tags.ntags > 0 ? &own_tags : NULL;
}

static RgSession *
make_session(const char *deployment, const char *version, int pid, const char *source,
			 Oid userid)
{
	RgSession  *s = palloc(sizeof(RgSession));

	s->deployment = pstrdup(deployment);
	s->version = pstrdup(version);
	s->pid = pid;
	s->source = source;
	s->trusted = rg_role_may_tag(userid);
	return s;
}

/*
 * The tagged sessions connected to this database now (with_self: this one
 * too), in the caller's memory context: those tagged by the settings
 * (source "setting") and those tagged by application_name.  A session
 * tagged both ways appears twice.  untrusted: also those whose role may
 * not provide evidence (trusted false).
 */
static List *
tagged_sessions(bool with_self, bool untrusted)
{
	List	   *result = NIL;
	int			nbackends;

	if (session_array != NULL)
	{
		/*
		 * A free slot is passed over without taking its lock: most are free
		 * (one per possible backend), and a slot published before this scan
		 * began is seen with its pid (published under the slot's lock; the
		 * barrier keeps the reads below after whatever this backend
		 * synchronized with before).
		 */
		pg_read_barrier();
		for (int i = 0; i < session_array->nslots; i++)
		{
			SessionSlot *slot = &session_array->slots[i];
			SessionSlot copy;

			if (((volatile SessionSlot *) slot)->pid == 0)
				continue;
			SpinLockAcquire(&slot->mutex);
			copy.pid = slot->pid;
			copy.dboid = slot->dboid;
			copy.userid = slot->userid;
			if (copy.pid != 0 && copy.dboid == MyDatabaseId)
			{
				memcpy(copy.deployment, slot->deployment, sizeof(copy.deployment));
				memcpy(copy.version, slot->version, sizeof(copy.version));
			}
			SpinLockRelease(&slot->mutex);
			if (copy.pid == 0 || copy.dboid != MyDatabaseId ||
				(copy.pid == MyProcPid && !with_self))
				continue;
			result = lappend(result, make_session(copy.deployment, copy.version,
												  copy.pid, "setting", copy.userid));
		}
	}

	/* this session's own name as it is now, not as of the status snapshot */
	if (with_self)
	{
		char	   *deployment;
		char	   *version;

		if (parse_appname(application_name, &deployment, &version))
			result = lappend(result, make_session(deployment, version, MyProcPid,
												  "application_name", GetSessionUserId()));
	}
	/* nobody else's application_name is a tag: no need to look */
	if (session_array != NULL &&
		pg_atomic_read_u32(&session_array->appname_tagged) <= (appname_counted ? 1 : 0))
		goto done;
	nbackends = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = rg_local_beentry_by_index(i);
		PgBackendStatus *be;
		char	   *deployment;
		char	   *version;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid <= 0 || be->st_procpid == MyProcPid ||
			be->st_backendType != B_BACKEND || be->st_databaseid != MyDatabaseId)
			continue;
		if (parse_appname(be->st_appname, &deployment, &version))
			result = lappend(result, make_session(deployment, version, be->st_procpid,
												  "application_name", be->st_userid));
	}

	/*
	 * The status snapshot would otherwise stay for the rest of the
	 * transaction, and pg_stat_activity read later in it would show the
	 * moment of our check rather than of its first use.
	 */
	pgstat_clear_backend_activity_snapshot();

done:
	if (!untrusted)
	{
		List	   *trusted = NIL;
		ListCell   *lc;

		foreach(lc, result)
			if (((RgSession *) lfirst(lc))->trusted)
				trusted = lappend(trusted, lfirst(lc));
		result = trusted;
	}
	return result;
}

/*
 * The tagged sessions that count as live evidence (see tagged_sessions()):
 * those of roles that may provide it.
 */
List *
rg_live_sessions(bool with_self)
{
	return tagged_sessions(with_self, false);
}

/*
 * rollguard._sessions(): every tagged session connected to this database,
 * this one included (the rollguard.sessions view), and from 1.6 whether
 * its tag is trusted (counts as evidence).
 */
Datum
rollguard_sessions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, tagged_sessions(true, true))
	{
		RgSession  *s = lfirst(lc);
		Datum		values[5];
		bool		nulls[5] = {0};

		/* before 1.6, the view shows only what counts, in four columns */
		if (rsinfo->setDesc->natts < 5 && !s->trusted)
			continue;
		values[0] = CStringGetTextDatum(s->deployment);
		values[1] = CStringGetTextDatum(s->version);
		values[2] = Int32GetDatum(s->pid);
		values[3] = CStringGetTextDatum(s->source);
		values[4] = BoolGetDatum(s->trusted);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
