/*-------------------------------------------------------------------------
 * override.c
 *		rollguard.override(relation, column, reason): lets breaking changes
 *		on one column (or, with a NULL column, one relation) through for the
 *		rest of the current transaction, in this session only; the downtime
 *		guard's findings on them too (lock_checks.c asks rg_override_reason).
 *
 * Overrides live in backend memory, tagged with the subtransaction that
 * granted them: they vanish when that subtransaction aborts and when the
 * transaction ends, whichever way.  Granting and using one is appended to
 * rollguard.history.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "rollguard.h"

PG_FUNCTION_INFO_V1(rollguard_override);

typedef struct Override
{
	char	   *nspname;
	char	   *relname;
	char	   *attname;		/* NULL: the whole relation */
	char	   *reason;
	SubTransactionId subid;
} Override;

static List *overrides = NIL;	/* in TopTransactionContext */
static bool callbacks_registered = false;

static void
override_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			overrides = NIL;	/* its memory goes with the transaction */
			break;
		default:
			break;
	}
}

static void
override_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	foreach(lc, overrides)
	{
		Override   *o = lfirst(lc);

		if (o->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			overrides = foreach_delete_current(overrides, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			o->subid = parentSubid;
	}
}

/*
 * rollguard.override(relation regclass, column name, reason text)
 */
Datum
rollguard_override(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *attname = NULL;
	char	   *reason;
	MemoryContext old;
	List	   *rels;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("reason must not be null"),
				 errhint("Say why the breaking change is safe; it is recorded in rollguard.history.")));
	relid = PG_GETARG_OID(0);
	reason = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strlen(reason) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("reason is too long"),
				 errdetail("It is %zu bytes long; the limit is 1000 bytes.", strlen(reason))));
	if (rg_is_blank(reason))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reason must not be empty"),
				 errhint("Say why the breaking change is safe; it is recorded in rollguard.history.")));

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!rg_relation_is_guarded(relid, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table, view, materialized view or foreign table that rollguard guards",
						get_rel_name(relid))));
	if (!PG_ARGISNULL(1))
	{
		attname = NameStr(*PG_GETARG_NAME(1));
		if (attname[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column must not be empty"),
					 errhint("Pass NULL to override changes of the whole relation.")));
		if (get_attnum(relid, attname) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							attname, get_rel_name(relid))));
	}
	if (!rg_extension_active())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"rollguard\" is not installed in this database")));

	if (!callbacks_registered)
	{
		RegisterXactCallback(override_xact_callback, NULL);
		RegisterSubXactCallback(override_subxact_callback, NULL);
		callbacks_registered = true;
	}

	/* the relation, and its partitions and inheriting tables, which the
	 * statement changes along with it */
	rels = find_all_inheritors(relid, NoLock, NULL);
	old = MemoryContextSwitchTo(TopTransactionContext);
	foreach(lc, rels)
	{
		Override   *o = palloc0(sizeof(Override));

		o->nspname = get_namespace_name(get_rel_namespace(lfirst_oid(lc)));
		o->relname = get_rel_name(lfirst_oid(lc));
		o->attname = attname ? pstrdup(attname) : NULL;
		o->reason = pstrdup(reason);
		o->subid = GetCurrentSubTransactionId();
		overrides = lappend(overrides, o);
	}
	MemoryContextSwitchTo(old);

	rg_log_history("override", get_namespace_name(get_rel_namespace(relid)),
				   get_rel_name(relid), attname, reason, NULL);
	PG_RETURN_VOID();
}

/*
 * The reason of an override that covers this change, or NULL.
 */
const char *
rg_override_reason(RgChange *ch)
{
	ListCell   *lc;

	foreach(lc, overrides)
	{
		Override   *o = lfirst(lc);

		if (strcmp(o->relname, ch->relname) == 0 &&
			strcmp(o->nspname, ch->nspname) == 0 &&
			(o->attname == NULL ||
			 (ch->attname != NULL && strcmp(o->attname, ch->attname) == 0)))
			return o->reason;
	}
	return NULL;
}
