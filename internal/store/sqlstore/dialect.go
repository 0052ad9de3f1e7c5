package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// dialect is what really differs between the SQL engines; every query and
// every transaction is written once, in the Store.
type dialect interface {
	// bind rewrites the ? placeholders of q in the engine's syntax.
	bind(q string) string
	// oneOf is the condition "col is one of vals" and its arguments.
	oneOf(col string, vals []string) (string, []any)
	// byteOrder is the clause that makes ORDER BY and comparisons of text
	// byte-wise, the lexical order the distribution spec uses.
	byteOrder() string
	// lockDigest serializes, per digest and within tx, LinkBlob against
	// ClaimDeletion: each checks what the other writes.
	lockDigest(ctx context.Context, tx *sql.Tx, d digest.Digest) error
	// retryable reports errors after which a whole transaction may simply
	// run again.
	retryable(err error) bool
	// foreignKey reports a foreign-key violation (an unknown user).
	foreignKey(err error) bool

	// schema is what the migration templates fill in.
	schema() schemaTypes
	// lockSchema keeps other processes from migrating on conn meanwhile.
	lockSchema(ctx context.Context, conn *sql.Conn) (unlock func(), err error)
	// schemaVersion reads, in tx, the number of the last migration applied.
	schemaVersion(ctx context.Context, tx *sql.Tx) (int, error)
	// setSchemaVersion records migration n as applied, inside its tx.
	setSchemaVersion(ctx context.Context, tx *sql.Tx, n int) error
}

// schemaTypes are the type names and expressions the migrations differ in.
type schemaTypes struct {
	Bytes     string // binary column type
	NowMillis string // the current Unix time in milliseconds
	// ByteOrder is byteOrder(): an index needs it where the engine's
	// default order of text is not byte-wise.
	ByteOrder string
}

// dollarBind numbers the ? placeholders of q as $1, $2, ... (PostgreSQL).
// Queries hold no ? in literals or identifiers, so no parsing is needed.
func dollarBind(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
