/*-------------------------------------------------------------------------
 * compat.h
 *		Every difference between PostgreSQL major versions that rollguard
 *		cares about, in one place.  Supported: 14 to 19.
 *-------------------------------------------------------------------------
 */
#ifndef ROLLGUARD_COMPAT_H
#define ROLLGUARD_COMPAT_H

#include "postgres.h"

#include "funcapi.h"
#include "tcop/utility.h"

#if PG_VERSION_NUM < 140000
#error "rollguard requires PostgreSQL 14 or later"
#endif

/* VARDATA() and friends: in varatt.h since 16, postgres.h before. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* ProcessUtility_hook's parameters, written once (readOnlyTree since 14). */
#define PROCESS_UTILITY_PARAMS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define PROCESS_UTILITY_ARGS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc

/* Is the lock held with exactly this mode? (17 added "or stronger") */
#if PG_VERSION_NUM >= 170000
#define LOCK_HELD_BY_ME(tag, mode) LockHeldByMe((tag), (mode), false)
#else
#define LOCK_HELD_BY_ME(tag, mode) LockHeldByMe((tag), (mode))
#endif

/* This backend's local transaction id (17 moved it into vxid). */
#include "storage/proc.h"
#if PG_VERSION_NUM >= 170000
#define RG_MY_LXID() (MyProc->vxid.lxid)
#else
#define RG_MY_LXID() (MyProc->lxid)
#endif

/* GUC prefix reservation (MarkGUCPrefixReserved since 15). */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * Is this A_Const (a raw parse tree's literal) NULL?  15 gave A_Const an
 * isnull field; before, a NULL literal was a Value of type T_Null.
 */
#if PG_VERSION_NUM >= 150000
#define A_CONST_IS_NULL(c) ((c)->isnull)
#else
#define A_CONST_IS_NULL(c) ((c)->val.type == T_Null)
#endif

/*
 * NOT ENFORCED (18): a CHECK constraint that is not enforced restricts
 * nothing.  Before 18 every constraint was enforced.  In a raw parse tree,
 * a table constraint (ADD CONSTRAINT) carries it in is_enforced; in a
 * column's constraint list it is a separate CONSTR_ATTR_NOT_ENFORCED item
 * after the constraint it applies to.
 */
#if PG_VERSION_NUM >= 180000
#define CONSTRAINT_IS_ENFORCED(con) ((con)->is_enforced)
#define RG_CONSTR_CHECK_ENFORCED(check) ((check)->ccenforced)
#else
#define CONSTRAINT_IS_ENFORCED(con) true
#define RG_CONSTR_CHECK_ENFORCED(check) true
#endif

/* Is the constraint at lc of a ColumnDef's constraint list enforced? */
static inline bool
column_constraint_is_enforced(List *constraints, ListCell *lc)
{
#if PG_VERSION_NUM >= 180000
	if (!lfirst_node(Constraint, lc)->is_enforced)
		return false;
	for (ListCell *next = lnext(constraints, lc); next != NULL;
		 next = lnext(constraints, next))
	{
		switch (lfirst_node(Constraint, next)->contype)
		{
			case CONSTR_ATTR_NOT_ENFORCED:
				return false;
			case CONSTR_ATTR_ENFORCED:
				return true;
			case CONSTR_ATTR_DEFERRABLE:
			case CONSTR_ATTR_NOT_DEFERRABLE:
			case CONSTR_ATTR_DEFERRED:
			case CONSTR_ATTR_IMMEDIATE:
				continue;
			default:
				return true;	/* the next constraint */
		}
	}
#endif
	return true;
}

/*
 * ALTER TABLE t ALTER CONSTRAINT name INHERIT (18): a NOT NULL constraint
 * of t that was NO INHERIT becomes NOT NULL in every table inheriting from
 * t, ONLY or not.  The column it is on, or NULL if the command is anything
 * else (before 18, ALTER CONSTRAINT changes only deferrability).
 */
#if PG_VERSION_NUM >= 180000
#include "catalog/pg_constraint.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#endif

static inline char *
not_null_made_inheritable(Oid relid, AlterTableCmd *cmd)
{
	char	   *result = NULL;
#if PG_VERSION_NUM >= 180000
	ATAlterConstraint *alter;
	Oid			conoid;
	HeapTuple	tup;

	if (cmd->subtype != AT_AlterConstraint || !IsA(cmd->def, ATAlterConstraint))
		return NULL;
	alter = (ATAlterConstraint *) cmd->def;
	if (!alter->alterInheritability || alter->noinherit)
		return NULL;
	conoid = get_relation_constraint_oid(relid, alter->conname, true);
	if (!OidIsValid(conoid))
		return NULL;
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tup))
		return NULL;
	if (((Form_pg_constraint) GETSTRUCT(tup))->contype == CONSTRAINT_NOTNULL)
		result = get_attname(relid, extractNotNullColumn(tup), true);
	ReleaseSysCache(tup);
#endif
	return result;
}

/*
 * InitMaterializedSRF(): 15.1; 15.0 called it SetSingleFuncCall(), and
 * before 15 every function set up its tuplestore itself.
 */
#if PG_VERSION_NUM < 150000
#include "miscadmin.h"
#include "utils/tuplestore.h"

static inline void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult =
		tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
							  false, work_mem);
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(old);
}
#elif PG_VERSION_NUM < 150001
#define InitMaterializedSRF(fcinfo, flags) SetSingleFuncCall(fcinfo, flags)
#endif

/*
 * GetAttrDefaultColumnAddress(): the column a pg_attrdef row belongs to,
 * since 15 (catalog/pg_attrdef.h).
 */
#if PG_VERSION_NUM < 150000
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_class.h"
#include "utils/fmgroids.h"

static inline ObjectAddress
GetAttrDefaultColumnAddress(Oid attrdefoid)
{
	ObjectAddress result = InvalidObjectAddress;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	rel = table_open(AttrDefaultRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_attrdef_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(attrdefoid));
	scan = systable_beginscan(rel, AttrDefaultOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_attrdef def = (Form_pg_attrdef) GETSTRUCT(tup);

		result.classId = RelationRelationId;
		result.objectId = def->adrelid;
		result.objectSubId = def->adnum;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}
#endif

/*
 * Backends, for the array of session tags (sessions.c).  MaxBackends is
 * known when shmem_request_hook runs (15+); in 14 shared memory is
 * requested from _PG_init, before MaxBackends is computed, so compute it as
 * 14 does.  A backend's slot: its ProcNumber (17+, from 0), or its
 * BackendId (from 1) before.
 */
#include "miscadmin.h"
#if PG_VERSION_NUM >= 150000
#define RG_MAX_BACKENDS() MaxBackends
#else
#include "postmaster/autovacuum.h"
#include "replication/walsender.h"
#define RG_MAX_BACKENDS() \
	(MaxConnections + autovacuum_max_workers + 1 + max_worker_processes + max_wal_senders)
#endif

#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define RG_MY_SLOT_INDEX() ((int) MyProcNumber)
#else
#include "storage/backendid.h"
#define RG_MY_SLOT_INDEX() ((int) MyBackendId - 1)
#endif

/* The i-th entry (from 1) of the backend status snapshot. */
#include "utils/backend_status.h"
#if PG_VERSION_NUM >= 160000
#define rg_local_beentry_by_index(i) pgstat_get_local_beentry_by_index(i)
#else
#define rg_local_beentry_by_index(i) pgstat_fetch_stat_local_beentry(i)
#endif

/* Ownership checks (object_ownercheck since 16). */
#if PG_VERSION_NUM >= 160000
#include "catalog/pg_class_d.h"
#include "catalog/pg_namespace_d.h"
#include "utils/acl.h"
#define rg_class_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#define rg_namespace_ownercheck(nspid, roleid) \
	object_ownercheck(NamespaceRelationId, (nspid), (roleid))
#else
#include "utils/acl.h"
#define rg_class_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#define rg_namespace_ownercheck(nspid, roleid) pg_namespace_ownercheck((nspid), (roleid))
#endif

/*
 * ExecutorCheckPerms_hook (observed.c): 16 moved the permission data of
 * range table entries (relid, requiredPerms and the column bitmaps
 * selectedCols, insertedCols, updatedCols) into a separate list of
 * RTEPermissionInfo, passed to the hook beside the range table.
 * RgPermInfo is whichever node carries them; RG_PERM_INFOS the list of
 * them among the hook's parameters.
 */
#include "executor/executor.h"
#include "parser/parsetree.h"
#if PG_VERSION_NUM >= 160000
#define EXECUTOR_CHECK_PERMS_PARAMS \
	List *rangeTable, List *rtePermInfos, bool ereport_on_violation
#define EXECUTOR_CHECK_PERMS_ARGS rangeTable, rtePermInfos, ereport_on_violation
#define RG_PERM_INFOS rtePermInfos
typedef RTEPermissionInfo RgPermInfo;
#define RG_PERM_INFO_IS_RELATION(p) true
#else
#define EXECUTOR_CHECK_PERMS_PARAMS List *rangeTable, bool ereport_on_violation
#define EXECUTOR_CHECK_PERMS_ARGS rangeTable, ereport_on_violation
#define RG_PERM_INFOS rangeTable
typedef RangeTblEntry RgPermInfo;
#define RG_PERM_INFO_IS_RELATION(p) ((p)->rtekind == RTE_RELATION)
#endif

#endif							/* ROLLGUARD_COMPAT_H */
