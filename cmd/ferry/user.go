package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/audit"
	"github.com/ferry-mirror/ferry/internal/auth"
	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/store"
)

// userEnv is what every `ferry user` subcommand needs: the same metadata
// store `ferry serve` uses.
type userEnv struct {
	stores        storeFlags
	auditLog      string
	password      string
	passwordStdin bool
}

func newUserCmd() *cobra.Command {
	var e userEnv
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the registry's users, their permissions and robot tokens",
		Long: `Manage who may use ferry serve. The commands work on the same metadata
store as serve (--data-dir, or --metadata postgres://... for HA replicas),
and take effect on running replicas within seconds.

serve requires credentials unless started with --auth=off; its first start
creates the user admin (password in <data-dir>/initial-admin-password).
A token obtained with a password or robot token dies at once when the
password changes, the robot token is revoked or the user is deleted. Permissions are given per repository prefix: pull; push and
delete (each implying pull); admin (everything). A prefix covers whole path
components: "ocp" covers ocp/release but not ocp2; "*" covers everything.

  ferry user add alice --password-stdin < pw.txt
  ferry user grant alice push ocp/
  ferry user token create ci     # prints a token usable as ci's password`,
	}
	pf := cmd.PersistentFlags()
	e.stores.register(pf, false)
	e.stores.registerSecretsKey(pf)
	pf.StringVar(&e.auditLog, "audit-log", "", "where changes are recorded: a file, - for standard output, or off (default <data-dir>/audit.log, the one serve writes; standard output with --metadata postgres://)")
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		restrictNewFiles()
		return applyEnvAndConfig(cmd.Flags(), "")
	}

	pwFlags := func(c *cobra.Command) {
		c.Flags().BoolVar(&e.passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
		c.Flags().StringVar(&e.password, "password", "", "the password (visible to other local users in the process list; prefer --password-stdin)")
	}
	add := &cobra.Command{
		Use: "add NAME", Short: "Add a user (with no permissions until granted)", Args: cobra.ExactArgs(1),
		RunE: e.run(audit.UserAdd, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			h, err := e.hash(cmd.InOrStdin())
			if err != nil {
				return err
			}
			if err := validUserName(args[0]); err != nil {
				return err
			}
			if err := as.CreateUser(ctx, args[0], h); errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("user %s exists already; change its password with `ferry user passwd %s`", args[0], args[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s added; give it permissions with `ferry user grant %s pull|push|delete|admin <prefix>`\n", args[0], args[0])
			return nil
		}),
	}
	pwFlags(add)
	passwd := &cobra.Command{
		Use: "passwd NAME", Short: "Change a user's password", Args: cobra.ExactArgs(1),
		RunE: e.run(audit.UserPasswd, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			h, err := e.hash(cmd.InOrStdin())
			if err != nil {
				return err
			}
			if err := as.SetPassword(ctx, args[0], h); err != nil {
				return noUser(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", args[0])
			return nil
		}),
	}
	pwFlags(passwd)
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a user with its permissions and robot tokens", Args: cobra.ExactArgs(1),
		RunE: e.run(audit.UserDelete, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			if err := as.DeleteUser(ctx, args[0]); err != nil {
				return noUser(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
			return nil
		}),
	}
	list := &cobra.Command{
		Use: "list", Short: "List users and their permissions", Args: cobra.NoArgs,
		RunE: e.run("", func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, _ []string) error {
			us, err := as.Users(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tPERMISSIONS")
			for _, u := range us {
				var gs []string
				for _, g := range u.Grants {
					gs = append(gs, g.Perm+":"+showPrefix(g.Prefix))
				}
				fmt.Fprintf(tw, "%s\t%s\n", u.Name, strings.Join(gs, " "))
			}
			return tw.Flush()
		}),
	}
	grant := &cobra.Command{
		Use: "grant NAME PERMISSION PREFIX", Short: "Give a user pull, push, delete or admin on repositories under PREFIX (* for all)", Args: cobra.ExactArgs(3),
		RunE: e.run(audit.Grant, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			g, err := parseGrant(args[1], args[2])
			if err != nil {
				return err
			}
			if err := as.AddGrant(ctx, args[0], g); err != nil {
				return noUser(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s may now %s %s\n", args[0], g.Perm, showPrefix(g.Prefix))
			return nil
		}),
	}
	revoke := &cobra.Command{
		Use: "revoke NAME PERMISSION PREFIX", Short: "Take back a permission given with grant", Args: cobra.ExactArgs(3),
		RunE: e.run(audit.Revoke, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			g, err := parseGrant(args[1], args[2])
			if err != nil {
				return err
			}
			if err := as.RemoveGrant(ctx, args[0], g); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%s has no %s permission on %s; see `ferry user list`", args[0], g.Perm, showPrefix(g.Prefix))
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s may no longer %s %s (by that grant)\n", args[0], g.Perm, showPrefix(g.Prefix))
			return nil
		}),
	}
	rotate := &cobra.Command{
		Use: "rotate-signing-key", Short: "Start signing bearer tokens with a new key; tokens signed before stay valid until they expire", Args: cobra.NoArgs,
		RunE: e.run(audit.KeyRotate, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, _ []string) error {
			box, err := e.stores.secretsBox(false)
			if err != nil {
				return fmt.Errorf("%w (the key serve uses: the same --secrets-key-file or %s)", err, secretbox.KeyEnv)
			}
			id, kept, err := auth.RotateSigningKey(ctx, as, box)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s: every replica signs with it within %s; %d key(s) kept to verify tokens not yet expired\n", id, auth.RingRefresh, kept)
			return nil
		}),
	}
	cmd.AddCommand(add, passwd, del, list, grant, revoke, rotate, e.tokenCmd())
	return cmd
}

func (e *userEnv) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Robot tokens: secrets usable as a user's password (for CI and clusters)"}
	var desc string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a robot token for user NAME and print it (shown only once)", Args: cobra.ExactArgs(1),
		RunE: e.run(audit.TokenCreate, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			secret, id, hash, err := auth.NewRobotSecret()
			if err != nil {
				return err
			}
			if err := as.CreateToken(ctx, &store.Token{ID: id, User: args[0], SecretHash: hash, Description: desc}); err != nil {
				return noUser(err, args[0])
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s created for %s: use it as the password of %s (e.g. podman login -u %s); it is not shown again\n", id, args[0], args[0], args[0])
			return nil
		}),
	}
	create.Flags().StringVar(&desc, "description", "", "what the token is for")
	list := &cobra.Command{
		Use: "list [NAME]", Short: "List robot tokens (of one user, or all)", Args: cobra.MaximumNArgs(1),
		RunE: e.run("", func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			user := ""
			if len(args) == 1 {
				user = args[0]
			}
			ts, err := as.Tokens(ctx, user)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tCREATED\tDESCRIPTION")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.User, t.Created.UTC().Format("2006-01-02 15:04"), t.Description)
			}
			return tw.Flush()
		}),
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a robot token by the id `token list` shows", Args: cobra.ExactArgs(1),
		RunE: e.run(audit.TokenRevoke, func(ctx context.Context, cmd *cobra.Command, as store.AuthStore, args []string) error {
			if err := as.DeleteToken(ctx, args[0]); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no token with id %s; see `ferry user token list`", args[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// run opens the metadata store around f and records action (the audit
// action of the command, "" for list commands that change nothing) with
// the command's arguments as its target.
func (e *userEnv) run(action string, f func(context.Context, *cobra.Command, store.AuthStore, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		meta, err := e.stores.openMetadata(ctx)
		if err != nil {
			return err
		}
		defer meta.Close()
		err = f(ctx, cmd, meta, args)
		if action == "" {
			return err
		}
		al, aerr := e.openAudit(cmd)
		if aerr != nil {
			return errors.Join(err, aerr)
		}
		defer al.Close()
		return e.record(ctx, al, action, strings.Join(args, " "), err)
	}
}

// openAudit opens the audit trail of `ferry user`: the one serve writes,
// or standard error with a shared store (standard output carries what the
// command prints, a new robot token for one).
func (e *userEnv) openAudit(cmd *cobra.Command) (*audit.Logger, error) {
	if e.auditLog == "" && e.stores.shared() {
		return audit.New(cmd.ErrOrStderr()), nil
	}
	return audit.Open(auditDest(e.auditLog, e.stores))
}

// record writes a `ferry user` change to the audit trail and returns the
// command's own error.
func (e *userEnv) record(ctx context.Context, al *audit.Logger, action, target string, err error) error {
	ev := audit.Event{Action: action, User: cliUser(), Remote: "cli", Target: target, Result: audit.OK}
	if err != nil {
		ev.Result, ev.Detail = audit.Failed, err.Error()
	}
	al.Record(ctx, ev)
	return err
}

// cliUser names the local account that ran a command, for the audit log.
func cliUser() string {
	if u, err := user.Current(); err == nil {
		return "local:" + u.Username
	}
	return "local:uid " + strconv.Itoa(os.Getuid())
}

func (e *userEnv) hash(stdin io.Reader) (string, error) {
	pw := e.password
	switch {
	case e.passwordStdin && pw != "":
		return "", errors.New("--password and --password-stdin exclude each other")
	case e.passwordStdin:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	case pw == "":
		return "", errors.New("no password: give it with --password-stdin (or --password)")
	}
	return auth.HashPassword(pw)
}

func parseGrant(perm, prefix string) (store.Grant, error) {
	p, err := auth.ParsePerm(perm)
	if err != nil {
		return store.Grant{}, err
	}
	return store.Grant{Perm: p, Prefix: auth.NormalizePrefix(prefix)}, nil
}

func validUserName(n string) error { return auth.CheckUserName(n) }

func noUser(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %s; see `ferry user list`", name)
	}
	return err
}

func showPrefix(p string) string {
	if p == "" {
		return "every repository"
	}
	return p + "/…"
}
