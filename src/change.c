/*-------------------------------------------------------------------------
 * change.c
 *		The change kinds: one row each, saying everything rollguard knows
 *		about a kind of schema change apart from how a statement is read
 *		(analyze.c).
 *
 * A row gives the kind's label (the "change" column of rollguard.check(),
 * rollguard.removed_column and rollguard.history), its rule class (which
 * live versions it breaks: see RgRuleClass and rules.c), whether it makes
 * a name disappear, whether it is the removal of a dependent object,
 * whether a later statement of the transaction can undo it (then it is
 * judged on what the transaction leaves: net_effect.c), the refusal's
 * message and its hint.  Adding a kind is adding a row here and
 * the code in analyze.c that finds it.
 *
 * The refusal's message is one format string (singular and plural), with
 * the same numbered arguments for every kind:
 *
 *	%1$d	how many deployments block it
 *	%2$s	the relation's kind ("table", "view", ...)
 *	%3$s	the relation's schema
 *	%4$s	the relation's name
 *	%5$s	the column; for a relation-level change, the name it gives (the
 *			new schema of SET SCHEMA)
 *
 * A format may leave out trailing arguments, never one in the middle.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"

#include "rollguard.h"

#define USES_COLUMN_HINT \
	gettext_noop("Roll out a version that no longer uses this column to every deployment, then run the migration again.")
#define MAY_WRITE_NULL_HINT \
	gettext_noop("First roll out a version that always writes a non-NULL value to this column to every deployment (for an inferred contract, declare it with rollguard.never_null()), or give the column a database default.")

/*
 * The NOT NULL kinds break a version for one of two reasons: it may write
 * NULL, or it inserts rows without writing the column (which has no
 * default).  The message states the reason that applies to every blocker
 * (message, or message_without with hint_without), or both (message_either).
 */
#define INSERTS_WITHOUT_NOT_NULL_HINT \
	gettext_noop("Give the column a database default first (in Django 5, db_default), or roll out a version that writes this column on every INSERT to every deployment.")

static const RgChangeDesc change_desc[] = {
	[RG_DROP_COLUMN] = {
		.label = "drop column",
		.rule = RG_RULE_USES_COLUMN,
		.removes = true,
		.drops = RG_DROPS_COLUMN,
		.message = gettext_noop("cannot drop column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot drop column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = USES_COLUMN_HINT,
	},
	[RG_RENAME_COLUMN] = {
		.label = "rename column",
		.rule = RG_RULE_USES_COLUMN,
		.undoable = true,
		.removes = true,
		.message = gettext_noop("cannot rename column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot rename column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Code finds columns by name: add the new column beside the old one, roll out code that uses only the new one to every deployment, then drop the old one."),
	},
	[RG_ALTER_TYPE] = {
		.label = "alter column type",
		.rule = RG_RULE_USES_COLUMN,
		.undoable = true,
		.message = gettext_noop("cannot change the type of column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot change the type of column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Only widening changes (varchar(n) to a larger n or to text, smallint to integer to bigint, numeric to a wider precision) are allowed while code uses the column: add a column of the new type instead, or first roll out code that no longer uses this one."),
	},
	[RG_SET_NOT_NULL] = {
		.label = "set not null",
		.rule = RG_RULE_MAY_WRITE_NULL,
		.undoable = true,
		.message = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" NOT NULL: %1$d deployment may still write NULL to it"),
		.message_plural = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" NOT NULL: %1$d deployments may still write NULL to it"),
		.hint = MAY_WRITE_NULL_HINT,
		.message_without = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" NOT NULL: %1$d deployment still inserts rows without it"),
		.message_without_plural = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" NOT NULL: %1$d deployments still insert rows without it"),
		.hint_without = INSERTS_WITHOUT_NOT_NULL_HINT,
		.message_either = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" NOT NULL: %1$d deployment may still write NULL to it or insert rows without it"),
		.message_either_plural = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" NOT NULL: %1$d deployments may still write NULL to it or insert rows without it"),
	},
	[RG_CHECK_NOT_NULL] = {
		.label = "add check not null",
		.rule = RG_RULE_MAY_WRITE_NULL,
		.undoable = true,
		.message = gettext_noop("cannot add a CHECK constraint that rejects NULL in column \"%5$s\" to %2$s \"%3$s.%4$s\": %1$d deployment may still write NULL to it"),
		.message_plural = gettext_noop("cannot add a CHECK constraint that rejects NULL in column \"%5$s\" to %2$s \"%3$s.%4$s\": %1$d deployments may still write NULL to it"),
		.hint = MAY_WRITE_NULL_HINT,
		.message_without = gettext_noop("cannot add a CHECK constraint that rejects NULL in column \"%5$s\" to %2$s \"%3$s.%4$s\": %1$d deployment still inserts rows without it"),
		.message_without_plural = gettext_noop("cannot add a CHECK constraint that rejects NULL in column \"%5$s\" to %2$s \"%3$s.%4$s\": %1$d deployments still insert rows without it"),
		.hint_without = INSERTS_WITHOUT_NOT_NULL_HINT,
		.message_either = gettext_noop("cannot add a CHECK constraint that rejects NULL in column \"%5$s\" to %2$s \"%3$s.%4$s\": %1$d deployment may still write NULL to it or insert rows without it"),
		.message_either_plural = gettext_noop("cannot add a CHECK constraint that rejects NULL in column \"%5$s\" to %2$s \"%3$s.%4$s\": %1$d deployments may still write NULL to it or insert rows without it"),
	},
	[RG_DROP_DEFAULT] = {
		.label = "drop default",
		.rule = RG_RULE_INSERTS_WITHOUT,
		.undoable = true,
		.drops = RG_DROPS_COLUMN,
		.message = gettext_noop("cannot drop the default of NOT NULL column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployment still inserts rows without it"),
		.message_plural = gettext_noop("cannot drop the default of NOT NULL column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployments still insert rows without it"),
		.hint = gettext_noop("Keep the database default (in Django 5, db_default) until every deployment runs a version that writes this column, then drop it in a later migration."),
	},
	[RG_DROP_IDENTITY] = {
		.label = "drop identity",
		.rule = RG_RULE_INSERTS_WITHOUT,
		.undoable = true,
		.message = gettext_noop("cannot drop the identity of NOT NULL column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployment still inserts rows without it"),
		.message_plural = gettext_noop("cannot drop the identity of NOT NULL column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployments still insert rows without it"),
		.hint = gettext_noop("Keep the identity (or give the column a database default) until every deployment runs a version that writes this column."),
	},
	[RG_ADD_NOT_NULL_COLUMN] = {
		.label = "add not null column",
		.rule = RG_RULE_INSERTS_WITHOUT,
		.message = gettext_noop("cannot add NOT NULL column \"%5$s\" without a default to %2$s \"%3$s.%4$s\": %1$d deployment still inserts rows without it"),
		.message_plural = gettext_noop("cannot add NOT NULL column \"%5$s\" without a default to %2$s \"%3$s.%4$s\": %1$d deployments still insert rows without it"),
		.hint = gettext_noop("Add the column with a database default (in Django 5, db_default) or as nullable, and keep it so until every deployment runs a version that writes it."),
	},
	[RG_GENERATED_ALWAYS] = {
		.label = "set generated always",
		.rule = RG_RULE_WRITES_COLUMN,
		.undoable = true,
		.message = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" GENERATED ALWAYS: %1$d deployment still writes it"),
		.message_plural = gettext_noop("cannot make column \"%5$s\" of %2$s \"%3$s.%4$s\" GENERATED ALWAYS: %1$d deployments still write it"),
		.hint = gettext_noop("Use GENERATED BY DEFAULT until every deployment runs a version that no longer writes this column."),
	},
	[RG_DROP_RELATION] = {
		.label = "drop relation",
		.rule = RG_RULE_USES_RELATION,
		.removes = true,
		.drops = RG_DROPS_RELATION,
		.message = gettext_noop("cannot drop %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot drop %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Roll out a version that no longer uses this relation to every deployment, then run the migration again."),
	},
	[RG_RENAME_RELATION] = {
		.label = "rename relation",
		.rule = RG_RULE_USES_RELATION,
		.undoable = true,
		.removes = true,
		.message = gettext_noop("cannot rename %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot rename %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Code finds relations by name: keep the old name (for example, as a view on the renamed table) until every deployment runs code that uses the new one."),
	},
	[RG_MOVE_RELATION] = {
		.label = "set schema",
		.rule = RG_RULE_USES_RELATION,
		.undoable = true,
		.removes = true,
		.message = gettext_noop("cannot move %2$s \"%3$s.%4$s\" to schema \"%5$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot move %2$s \"%3$s.%4$s\" to schema \"%5$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Code finds relations by name: keep the old name (for example, as a view on the moved table) until every deployment runs code that uses the new one."),
	},
	[RG_RENAME_SCHEMA] = {
		.label = "rename schema",
		.rule = RG_RULE_USES_RELATION,
		.undoable = true,
		.removes = true,
		.message = gettext_noop("cannot rename schema \"%3$s\", which holds %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot rename schema \"%3$s\", which holds %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Code finds relations by schema and name: keep the old schema until every deployment runs code that uses the new one."),
	},
	[RG_CASCADE_DROP_COLUMN] = {
		.label = "drop column (dependent)",
		.rule = RG_RULE_USES_COLUMN,
		.removes = true,
		.drops = RG_DROPS_COLUMN,
		.dependent = true,
		.message = gettext_noop("cannot drop column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot drop column \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Roll out a version that no longer uses this column to every deployment first, or change the statement so that the column stays."),
	},
	[RG_CASCADE_DROP_RELATION] = {
		.label = "drop relation (dependent)",
		.rule = RG_RULE_USES_RELATION,
		.removes = true,
		.drops = RG_DROPS_RELATION,
		.dependent = true,
		.message = gettext_noop("cannot drop %2$s \"%3$s.%4$s\": %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot drop %2$s \"%3$s.%4$s\": %1$d deployments still use it"),
		.hint = gettext_noop("Roll out a version that no longer uses this relation to every deployment first, or change the statement so that the relation stays."),
	},
	[RG_ATTACH_NOT_NULL] = {
		.label = "attach partition",
		.rule = RG_RULE_MAY_WRITE_NULL,
		.undoable = true,
		.message = gettext_noop("cannot attach %2$s \"%3$s.%4$s\" as a partition: its bound rejects NULL in column \"%5$s\", and %1$d deployment may still write NULL to it"),
		.message_plural = gettext_noop("cannot attach %2$s \"%3$s.%4$s\" as a partition: its bound rejects NULL in column \"%5$s\", and %1$d deployments may still write NULL to it"),
		.hint = gettext_noop("First roll out a version that always writes a non-NULL value to this column to every deployment (for an inferred contract, declare it with rollguard.never_null()), or attach the table where its bound takes NULL (a DEFAULT partition, a list bound that includes NULL)."),
		.message_without = gettext_noop("cannot attach %2$s \"%3$s.%4$s\" as a partition: its bound rejects NULL in column \"%5$s\", and %1$d deployment still inserts rows without it"),
		.message_without_plural = gettext_noop("cannot attach %2$s \"%3$s.%4$s\" as a partition: its bound rejects NULL in column \"%5$s\", and %1$d deployments still insert rows without it"),
		.hint_without = INSERTS_WITHOUT_NOT_NULL_HINT,
		.message_either = gettext_noop("cannot attach %2$s \"%3$s.%4$s\" as a partition: its bound rejects NULL in column \"%5$s\", and %1$d deployment may still write NULL to it or insert rows without it"),
		.message_either_plural = gettext_noop("cannot attach %2$s \"%3$s.%4$s\" as a partition: its bound rejects NULL in column \"%5$s\", and %1$d deployments may still write NULL to it or insert rows without it"),
	},
	[RG_TABLE_TO_VIEW] = {
		.label = "convert table to view",
		.rule = RG_RULE_USES_RELATION,
		.message = gettext_noop("cannot turn %2$s \"%3$s.%4$s\" into a view: %1$d deployment still uses it"),
		.message_plural = gettext_noop("cannot turn %2$s \"%3$s.%4$s\" into a view: %1$d deployments still use it"),
		.hint = gettext_noop("A view in place of the table is a new relation under the old name: keep the table until every deployment runs a version that no longer uses it."),
	},
	[RG_DETACH_PARTITION] = {
		.label = "detach partition",
		.rule = RG_RULE_INSERTS_INTO,
		.message = gettext_noop("cannot detach partition \"%5$s\" from %2$s \"%3$s.%4$s\": %1$d deployment still inserts rows into it"),
		.message_plural = gettext_noop("cannot detach partition \"%5$s\" from %2$s \"%3$s.%4$s\": %1$d deployments still insert rows into it"),
		.hint = gettext_noop("Rows that only this partition takes (it is the DEFAULT partition, or a hash partition) would have nowhere to go: attach its replacement first, or roll out a version that no longer inserts into the table to every deployment."),
	},
	[RG_DROP_PARTITION] = {
		.label = "drop partition",
		.rule = RG_RULE_INSERTS_INTO,
		.message = gettext_noop("cannot drop partition \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployment still inserts rows into it"),
		.message_plural = gettext_noop("cannot drop partition \"%5$s\" of %2$s \"%3$s.%4$s\": %1$d deployments still insert rows into it"),
		.hint = gettext_noop("Rows that only this partition takes (it is the DEFAULT partition, or a hash partition) would have nowhere to go: attach its replacement first, or roll out a version that no longer inserts into the table to every deployment."),
	},
};

StaticAssertDecl(lengthof(change_desc) == RG_NUM_CHANGE_KINDS,
				 "every change kind has a row in change_desc[]");

const RgChangeDesc *
rg_change_desc(RgChangeKind kind)
{
	Assert(kind >= 0 && kind < RG_NUM_CHANGE_KINDS);
	return &change_desc[kind];
}

/* The relation's kind as messages name it. */
const char *
rg_relkind_word(char relkind)
{
	switch (relkind)
	{
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		default:
			return "table";
	}
}

/* Is the same change of the same column or relation in the list? */
bool
rg_change_listed(List *changes, RgChange *ch)
{
	ListCell   *lc;

	foreach(lc, changes)
	{
		RgChange   *other = lfirst(lc);

		if (other->kind == ch->kind && other->relid == ch->relid &&
			strcmp(other->relname, ch->relname) == 0 &&
			strcmp(other->nspname, ch->nspname) == 0 &&
			((other->attname == NULL && ch->attname == NULL) ||
			 (other->attname && ch->attname && strcmp(other->attname, ch->attname) == 0)))
			return true;
	}
	return false;
}
