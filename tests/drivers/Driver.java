// PostgreSQL JDBC driver scenario (see common.py): server-side named statements forced with prepareThreshold=1.
//
// Run as a single-file program: java -cp /usr/share/java/postgresql.jar Driver.java
// Settings come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, DRIVER_TABLE,
// DRIVER_CLIENTS, DRIVER_TRANSACTIONS; any mismatch prints FAIL and exits 1.

import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class Driver {
    static final int CLIENTS = Integer.parseInt(env("DRIVER_CLIENTS", "20"));
    static final int TRANSACTIONS = Integer.parseInt(env("DRIVER_TRANSACTIONS", "20"));
    static final String TABLE = env("DRIVER_TABLE", "drv_jdbc");
    static final String COLUMNS = "id, client, label, amount, flag, at, payload, tags, note";
    static final String INSERT = "INSERT INTO " + TABLE + " (" + COLUMNS
            + ") VALUES (?::int8, ?::int4, ?::text, ?::numeric, ?::bool, ?::timestamptz, ?::bytea, ?::int4[], ?::text)";
    static final String SELECT = "SELECT " + COLUMNS + " FROM " + TABLE + " WHERE id = ?";
    static final String DIVIDE = "SELECT ?::int4 / ?::int4";
    static final long ERROR_ID_OFFSET = 999_999;
    static final OffsetDateTime BASE_TIME = OffsetDateTime.of(2024, 2, 29, 23, 59, 58, 123_456_000, ZoneOffset.UTC);

    static class ScenarioError extends Exception {
        ScenarioError(String message) { super(message); }
    }

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null ? fallback : v;
    }

    static String need(String name) throws ScenarioError {
        String v = System.getenv(name);
        if (v == null) throw new ScenarioError("environment variable not set: " + name);
        return v;
    }

    static Connection connect() throws Exception {
        String url = "jdbc:postgresql://" + need("PGHOST") + ":" + need("PGPORT") + "/" + need("PGDATABASE");
        Properties p = new Properties();
        p.setProperty("user", need("PGUSER"));
        p.setProperty("password", need("PGPASSWORD"));
        p.setProperty("sslmode", "disable");
        // Named server-side statements (S_1, S_2, ...) from the first execution on.
        // https://jdbc.postgresql.org/documentation/server-prepare/
        p.setProperty("prepareThreshold", "1");
        return DriverManager.getConnection(url, p);
    }

    static long rowId(int client, long k) { return (client + 1) * 10_000_000_000L + k; }

    // The values of common.py's row(), with Java types.
    static Object[] row(int client, int k) {
        String label = "client " + client + " row " + k + ": 'quoted' \"double\" back\\slash é ✓";
        BigDecimal amount = new BigDecimal((k % 4 == 3 ? "-" : "") + (client * 1000 + k) + "."
                + String.format("%04d", (k * 37) % 10000));
        OffsetDateTime at = BASE_TIME.plusDays(client).plusSeconds(k).plusNanos(k * 1000L);
        byte[] payload = {0, (byte) 255, (byte) client, (byte) (k % 256), 0x27, 0x5c, 0};
        Integer[] tags = {client, k, -1};
        String note = k % 3 == 0 ? null : "note " + k;
        return new Object[] {rowId(client, k), client, label, amount, k % 2 == 0, at, payload, tags, note};
    }

    static void bindRow(Connection c, PreparedStatement st, Object[] r) throws SQLException {
        st.setLong(1, (Long) r[0]);
        st.setInt(2, (Integer) r[1]);
        st.setString(3, (String) r[2]);
        st.setBigDecimal(4, (BigDecimal) r[3]);
        st.setBoolean(5, (Boolean) r[4]);
        st.setObject(6, r[5]);
        st.setBytes(7, (byte[]) r[6]);
        st.setArray(8, c.createArrayOf("int4", (Integer[]) r[7]));
        if (r[8] == null) st.setNull(9, Types.VARCHAR); else st.setString(9, (String) r[8]);
    }

    static String describe(Object[] r) {
        List<String> parts = new ArrayList<>();
        for (Object o : r) {
            if (o instanceof byte[] b) parts.add(Arrays.toString(b));
            else if (o instanceof Object[] a) parts.add(Arrays.toString(a));
            else parts.add(String.valueOf(o));
        }
        return parts.toString();
    }

    // Reads row `id` back (null when absent).
    static Object[] fetch(PreparedStatement select, long id) throws SQLException {
        select.setLong(1, id);
        try (ResultSet rs = select.executeQuery()) {
            if (!rs.next()) return null;
            Array tags = rs.getArray(8);
            return new Object[] {rs.getLong(1), rs.getInt(2), rs.getString(3), rs.getBigDecimal(4), rs.getBoolean(5),
                rs.getObject(6, OffsetDateTime.class), rs.getBytes(7), (Integer[]) tags.getArray(), rs.getString(9)};
        }
    }

    static void checkRow(int client, int k, Object[] got) throws ScenarioError {
        Object[] want = row(client, k);
        if (got == null) throw new ScenarioError("client " + client + " transaction " + k + ": row not found after inserting it");
        boolean same = got[0].equals(want[0]) && got[1].equals(want[1]) && got[2].equals(want[2])
                && ((BigDecimal) got[3]).compareTo((BigDecimal) want[3]) == 0 && got[4].equals(want[4])
                && ((OffsetDateTime) got[5]).isEqual((OffsetDateTime) want[5])
                && Arrays.equals((byte[]) got[6], (byte[]) want[6]) && Arrays.equals((Object[]) got[7], (Object[]) want[7])
                && java.util.Objects.equals(got[8], want[8]);
        if (!same)
            throw new ScenarioError("client " + client + " transaction " + k + ": read back " + describe(got) + ", wrote " + describe(want));
    }

    static void expectSqlState(String what, SQLException e, String want) throws ScenarioError {
        if (!want.equals(e.getSQLState()))
            throw new ScenarioError(what + ": expected SQLSTATE " + want + ", got " + e.getSQLState() + " (" + e.getMessage() + ")");
    }

    static void client(int c) throws Exception {
        try (Connection conn = connect();
             PreparedStatement insert = conn.prepareStatement(INSERT);
             PreparedStatement select = conn.prepareStatement(SELECT);
             PreparedStatement divide = conn.prepareStatement(DIVIDE)) {
            conn.setAutoCommit(false);
            for (int k = 0; k < TRANSACTIONS; ++k) {
                bindRow(conn, insert, row(c, k));
                insert.executeUpdate();
                checkRow(c, k, fetch(select, rowId(c, k)));
                conn.commit();
            }
            if (!insert.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare())
                throw new ScenarioError("client " + c + ": the driver did not use a server-side prepared statement");

            long errorId = rowId(c, (int) ERROR_ID_OFFSET);
            Object[] r = row(c, 0);
            r[0] = errorId;
            bindRow(conn, insert, r);
            insert.executeUpdate();
            try {
                divide.setInt(1, 1);
                divide.setInt(2, 0);
                divide.executeQuery().close();
                throw new ScenarioError("client " + c + ": 1/0 did not fail");
            } catch (SQLException e) {
                expectSqlState("client " + c + ": 1/0", e, "22012");
            }
            conn.rollback();
            if (fetch(select, errorId) != null)
                throw new ScenarioError("client " + c + ": the row of the rolled-back transaction is visible");
            divide.setInt(1, 10);
            divide.setInt(2, 2);
            try (ResultSet rs = divide.executeQuery()) {
                if (!rs.next() || rs.getInt(1) != 5) throw new ScenarioError("client " + c + ": 10/2 after the error");
            }
            conn.commit();

            try {
                bindRow(conn, insert, row(c, 0));
                insert.executeUpdate();
                throw new ScenarioError("client " + c + ": duplicate id accepted");
            } catch (SQLException e) {
                expectSqlState("client " + c + ": duplicate id", e, "23505");
            }
            conn.rollback();
            checkRow(c, 0, fetch(select, rowId(c, 0)));
            conn.commit();
        }
    }

    static void run() throws Exception {
        try (Connection conn = connect(); Statement st = conn.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + TABLE);
            st.execute("CREATE TABLE " + TABLE + " (id int8 PRIMARY KEY, client int4 NOT NULL, label text NOT NULL, "
                    + "amount numeric(18,4) NOT NULL, flag bool NOT NULL, at timestamptz NOT NULL, payload bytea NOT NULL, "
                    + "tags int4[] NOT NULL, note text)");
        }
        ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        List<Future<?>> results = new ArrayList<>();
        for (int c = 0; c < CLIENTS; ++c) {
            final int client = c;
            results.add(pool.submit(() -> { client(client); return null; }));
        }
        pool.shutdown();
        for (Future<?> f : results) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                throw (Exception) e.getCause();
            }
        }
        try (Connection conn = connect(); Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT count(*), count(DISTINCT client), count(*) - count(note), "
                     + "count(*) FILTER (WHERE id % 10000000000 = " + ERROR_ID_OFFSET + ") FROM " + TABLE)) {
            rs.next();
            long nulls = 0;
            for (int k = 0; k < TRANSACTIONS; ++k) if (k % 3 == 0) nulls += CLIENTS;
            long count = rs.getLong(1), clients = rs.getLong(2), nullNotes = rs.getLong(3), errorRows = rs.getLong(4);
            if (count != (long) CLIENTS * TRANSACTIONS || clients != CLIENTS || nullNotes != nulls || errorRows != 0)
                throw new ScenarioError("final table: count=" + count + " clients=" + clients + " null_notes=" + nullNotes
                        + " rolled_back_rows=" + errorRows + ", expected count=" + (CLIENTS * TRANSACTIONS) + " clients="
                        + CLIENTS + " null_notes=" + nulls + " rolled_back_rows=0");
        }
    }

    public static void main(String[] args) {
        try {
            run();
        } catch (ScenarioError e) {
            System.err.println("FAIL jdbc: " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            String state = e instanceof SQLException s ? s.getSQLState() : null;
            System.err.println("FAIL jdbc: unexpected " + e.getClass().getName() + " (SQLSTATE " + state + "): " + e.getMessage());
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("OK jdbc: " + CLIENTS + " concurrent clients x " + TRANSACTIONS
                + " transactions with named statements, 22012 and 23505 recovered");
    }
}
