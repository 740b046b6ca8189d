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

/* ProcessUtility_hook's parameters, written once (readOnlyTree since 14). */
#define PROCESS_UTILITY_PARAMS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define PROCESS_UTILITY_ARGS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc

/* GUC prefix reservation (MarkGUCPrefixReserved since 15). */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#endif							/* ROLLGUARD_COMPAT_H */
