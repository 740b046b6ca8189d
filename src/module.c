/*-------------------------------------------------------------------------
 * module.c
 *		Module entry: _PG_init asks each part to define its settings and
 *		(when preloaded) install its hooks; the one shared-memory request
 *		and startup (the tagged sessions' slots, the observed uses, the
 *		counters); and the preload check, also as an event trigger that
 *		refuses schema changes in a database with the extension where the
 *		library was not preloaded (fail closed).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "compat.h"
#include "rollguard.h"

PG_MODULE_MAGIC;

static bool preloaded = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Shared memory: the tagged sessions' slots, the observed uses, the
 * counters. */
static void
request_shmem(void)
{
	rg_sessions_shmem_request();
	rg_observed_shmem_request();
	rg_stats_shmem_request();
	rg_liveness_shmem_request();
}

#if PG_VERSION_NUM >= 150000
static void
rg_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	request_shmem();
}
#endif

static void
rg_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rg_sessions_shmem_startup();
	rg_observed_shmem_startup();
	rg_stats_shmem_startup();
	rg_liveness_shmem_startup();
}

void		_PG_init(void);

PG_FUNCTION_INFO_V1(rollguard_require_preload);
PG_FUNCTION_INFO_V1(rollguard_require_preload_ddl);
PG_FUNCTION_INFO_V1(rollguard_is_active);
PG_FUNCTION_INFO_V1(rollguard_who);

void
_PG_init(void)
{
	/* rollguard.enforce */
	rg_report_define_settings();

	/* rollguard.lock_checks, rollguard.lock_checks_min_size */
	rg_lock_define_settings();

	/* rollguard.deployment, rollguard.version: the session tags */
	rg_sessions_define_settings();

	/* rollguard.stale_after, rollguard.forget_after: liveness */
	rg_liveness_define_settings();

	/* rollguard.observe, rollguard.max_observed, ..._save_interval */
	rg_observed_define_settings();

	MarkGUCPrefixReserved("rollguard");

	/*
	 * The guard works only when loaded into every backend at start.  Loaded
	 * any other way (a function call, LOAD), the library installs no hook,
	 * and CREATE EXTENSION and the deploy functions refuse to run.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	preloaded = true;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rg_shmem_request;
#else
	request_shmem();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rg_shmem_startup;
	rg_install_hooks();
	rg_sessions_install_hooks();
	rg_observed_install_hooks();
}

/* The refusal when the library was not preloaded. */
static void
refuse_not_preloaded(bool ddl)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("rollguard must be loaded via \"shared_preload_libraries\""),
			 ddl ? errdetail("The extension rollguard is installed in this database, but the server did not load its library at start: no schema change would be checked.") :
			 errdetail("Without it, no schema change would be checked."),
			 errhint("Add rollguard to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));
}

/*
 * rollguard._require_preload(): errors out unless the library was preloaded.
 */
Datum
rollguard_require_preload(PG_FUNCTION_ARGS)
{
	if (!preloaded)
		refuse_not_preloaded(false);
	PG_RETURN_VOID();
}

/* Does the statement drop the extension (DROP EXTENSION rollguard)? */
static bool
drops_rollguard(Node *parsetree)
{
	DropStmt   *stmt;
	ListCell   *lc;

	if (parsetree == NULL || !IsA(parsetree, DropStmt))
		return false;
	stmt = (DropStmt *) parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
	{
		if (IsA(lfirst(lc), String) && strcmp(strVal(lfirst(lc)), "rollguard") == 0)
			return true;
	}
	return false;
}

/*
 * rollguard._require_preload_ddl(): the event trigger rollguard_require_preload
 * (ddl_command_start).  Where the library was preloaded it returns at once.
 * Where it was not (removed from shared_preload_libraries while the
 * extension exists), calling it loads the library, without hooks, and it
 * refuses the schema change: nobody is left unguarded without knowing.
 * Let through: DROP EXTENSION rollguard (the way to stop using it), and
 * everything while a superuser has set rollguard.enforce = off (the guard
 * checks nothing then anyway).  A superuser can also disable the trigger
 * (ALTER EVENT TRIGGER rollguard_require_preload DISABLE), which event
 * triggers do not fire for.
 */
Datum
rollguard_require_preload_ddl(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("rollguard._require_preload_ddl() was not called by an event trigger")));
	if (preloaded)
		PG_RETURN_VOID();
	if (drops_rollguard(((EventTriggerData *) fcinfo->context)->parsetree))
		PG_RETURN_VOID();
	if (rg_enforce == RG_ENFORCE_OFF)
		PG_RETURN_VOID();
	refuse_not_preloaded(true);
	PG_RETURN_VOID();
}

/*
 * rollguard.is_active(): does the guard check this session's schema
 * changes -- the library preloaded, and rollguard.enforce not off?  For
 * deploy scripts to ask before they migrate.
 */
Datum
rollguard_is_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(preloaded && rg_enforce != RG_ENFORCE_OFF);
}

/*
 * rollguard._who(): the role the session acts as (SET ROLE included), also
 * inside SECURITY DEFINER functions, for rollguard.history.
 */
Datum
rollguard_who(PG_FUNCTION_ARGS)
{
	Name		result = palloc0(NAMEDATALEN);

	namestrcpy(result, GetUserNameFromId(GetOuterUserId(), false));
	PG_RETURN_NAME(result);
}
