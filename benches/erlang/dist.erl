%% Spawnpool's own Erlang counterpart of `benches/src/bin/dist_bench.rs`:
%% the same two-node measurements, so that one command prints our figure,
%% Erlang's and the ratio side by side. Modelled on what
%% ../shared/erlang-bench/dist_bench.erl measures (the reference figures
%% of PERF.md).
%%
%% This node is A (the sender, the caller, the spawner). It starts node B
%% itself with `peer` (a separate OS process, `erl` from the same
%% installation), both distributed on 127.0.0.1 only (long names
%% Name@127.0.0.1, `inet_dist_use_interface` {127,0,0,1}; epmd is whatever
%% ERL_EPMD_PORT points at: dist_bench starts a private one), and stops it
%% at the end.
%%
%% Measurements (each repeated `reps` times; one RESULT line per figure):
%%   one_way_int       a receiver is spawned on B (not timed); then one
%%                     sender on A sends M messages of the integer 42 to it;
%%                     the receiver takes them (`receive _`) and answers
%%                     {done, self()} after the last: msgs/s, from the first
%%                     send to the answer
%%   one_way_1k        the same with a 1 KB binary (`size` bytes; one binary
%%                     shared by every send): msgs/s
%%   pingpong_rtt_p50  a ponger on B; 1000 warm-up round trips
%%   pingpong_rtt_p99  ({ping, self()} -> pong), then K individually timed
%%                     ones: us
%%   remote_spawn      spawn(B, dist, noop, []) S times, each waiting for
%%                     the pid (OTP 23+: spawn/4 to another node waits for
%%                     the spawn reply): spawns/s
%%   remote_spawn_pipelined  S spawn_request(B, dist, reply, [self()],
%%                     [{reply, no}]) issued at once, then the S messages of
%%                     the spawned processes collected: spawns/s
%%
%% Output, one line per figure (values in the unit named):
%%   RESULT <id> unit=<u> n=<N> median=<v> min=<v> max=<v> runs=<v1,v2,...>
%% and INFO lines (versions, nodes, OS pids).
%%
%% Run (dist_bench does this itself; by hand, with an epmd running):
%%   erlc -o /tmp dist.erl
%%   erl -noshell -name dist_a@127.0.0.1 -setcookie c +S 2:2 \
%%       -kernel inet_dist_use_interface '{127,0,0,1}' -pa /tmp \
%%       -run dist main reps=5 parts=msg,bin,pp,spawn
%% Arguments are key=value: reps, msgs, bin_msgs, size, pp, spawns (the N of
%% each measurement), sched (schedulers of B, default 2) and
%% parts=msg,bin,pp,spawn.
-module(dist).
-export([main/1, recv_count/2, ponger/0, noop/0, reply/1]).

main(Args) ->
    Opts = maps:merge(#{reps => 5, msgs => 1000000, bin_msgs => 300000,
                        size => 1024, pp => 20000, spawns => 50000,
                        sched => 2, parts => [msg, bin, pp, spawn]},
                      maps:from_list([parse_arg(A) || A <- Args])),
    B = start_b(Opts),
    io:format("INFO otp=~s erts=~s A=~p B=~p schedulers_A=~p schedulers_B=~p "
              "jit=~p dist_buf_busy_limit=~p os_pid_A=~s os_pid_B=~s~n",
              [erlang:system_info(otp_release), erlang:system_info(version),
               node(), B, erlang:system_info(schedulers_online),
               erpc:call(B, erlang, system_info, [schedulers_online]),
               erlang:system_info(emu_flavor) =:= jit,
               erlang:system_info(dist_buf_busy_limit),
               os:getpid(), erpc:call(B, os, getpid, [])]),
    %% For dist_bench to kill B by PID should it outlive this node.
    io:format("INFO os_pid ~s ~s~n", [B, erpc:call(B, os, getpid, [])]),
    Reps = maps:get(reps, Opts),
    [part(P, B, Reps, Opts) || P <- maps:get(parts, Opts)],
    erpc:cast(B, erlang, halt, []),
    timer:sleep(200),
    erlang:halt(0).

parse_arg(A) ->
    [K, V] = string:split(A, "="),
    case K of
        "parts" -> {parts, [list_to_atom(P) || P <- string:split(V, ",", all)]};
        _ -> {list_to_atom(K), list_to_integer(V)}
    end.

%% Node B: a peer on 127.0.0.1 with the same cookie, code path and
%% distribution interface as this node.
start_b(#{sched := S}) ->
    Dir = filename:dirname(code:which(?MODULE)),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Name = list_to_atom("dist_b_" ++ os:getpid()),
    PeerArgs = ["-setcookie", atom_to_list(erlang:get_cookie()),
                "+S", integer_to_list(S) ++ ":" ++ integer_to_list(S),
                "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
                "-pa", Dir],
    {ok, _Peer, B} = peer:start_link(#{name => Name, host => Host,
                                       longnames => true, args => PeerArgs}),
    pong = net_adm:ping(B),
    {module, ?MODULE} = erpc:call(B, code, ensure_loaded, [?MODULE]),
    B.

part(msg, B, Reps, #{msgs := M}) ->
    rate("one_way_int", "msgs/s", M, Reps, fun() -> one_way(B, M, 42) end);
part(bin, B, Reps, #{bin_msgs := M, size := Size}) ->
    Bin = binary:copy(<<"x">>, Size),
    rate("one_way_1k", "msgs/s", M, Reps, fun() -> one_way(B, M, Bin) end);
part(pp, B, Reps, #{pp := K}) ->
    pingpong(B, K, Reps);
part(spawn, B, Reps, #{spawns := S}) ->
    rate("remote_spawn", "spawns/s", S, Reps, fun() -> rs_seq(B, S) end),
    rate("remote_spawn_pipelined", "spawns/s", S, Reps, fun() -> rs_pipelined(B, S) end).

%% ---------------------------------------------------------------------
%% Reporting

%% F returns {Setup, Run}: Setup runs untimed, then Run is timed.
rate(Id, Unit, N, Reps, F) ->
    Rates = [begin
                 erlang:garbage_collect(),
                 Run = F(),
                 T0 = erlang:monotonic_time(nanosecond),
                 Run(),
                 T1 = erlang:monotonic_time(nanosecond),
                 N / ((T1 - T0) / 1.0e9)
             end || _ <- lists:seq(1, Reps)],
    report(Id, Unit, N, Rates).

report(Id, Unit, N, Vals) ->
    S = lists:sort(Vals),
    Med = lists:nth((length(S) + 1) div 2, S),
    io:format("RESULT ~s unit=~s n=~p median=~s min=~s max=~s runs=~s~n",
              [Id, Unit, N, fmt(Med), fmt(hd(S)), fmt(lists:last(S)),
               lists:join(",", [fmt(V) || V <- Vals])]).

fmt(V) -> float_to_list(float(V), [{decimals, 3}, compact]).

%% The element for a percentile of a sorted tuple, with the same index rule
%% as dist_bench.rs: element(max(1, K * P div 100)).
pct(S, P) -> element(max(1, tuple_size(S) * P div 100), S).

%% ---------------------------------------------------------------------
%% One-way messages A -> B. The receiver is spawned before the clock
%% starts (ours is too).

one_way(B, N, Msg) ->
    R = spawn(B, ?MODULE, recv_count, [N, self()]),
    fun() ->
            send_loop(N, R, Msg),
            receive {done, R} -> ok end
    end.

send_loop(0, _, _) -> ok;
send_loop(N, R, Msg) -> R ! Msg, send_loop(N - 1, R, Msg).

recv_count(0, From) -> From ! {done, self()};
recv_count(N, From) -> receive _ -> recv_count(N - 1, From) end.

%% ---------------------------------------------------------------------
%% Ping-pong A <-> B

ponger() -> receive {ping, From} -> From ! pong, ponger(); stop -> ok end.

pingpong(B, K, Reps) ->
    Res = [begin
               P = spawn(B, ?MODULE, ponger, []),
               pp_loop(1000, P),
               Ts = pp_timed(K, P, []),
               P ! stop,
               S = list_to_tuple(lists:sort(Ts)),
               {pct(S, 50) / 1000, pct(S, 99) / 1000}
           end || _ <- lists:seq(1, Reps)],
    report("pingpong_rtt_p50", "us", K, [A || {A, _} <- Res]),
    report("pingpong_rtt_p99", "us", K, [X || {_, X} <- Res]).

pp_loop(0, _) -> ok;
pp_loop(N, P) -> P ! {ping, self()}, receive pong -> ok end, pp_loop(N - 1, P).

pp_timed(0, _, Acc) -> Acc;
pp_timed(K, P, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    P ! {ping, self()},
    receive pong -> ok end,
    T1 = erlang:monotonic_time(nanosecond),
    pp_timed(K - 1, P, [T1 - T0 | Acc]).

%% ---------------------------------------------------------------------
%% Remote spawn on B

noop() -> ok.
reply(To) -> To ! spawned_done.

rs_seq(B, N) -> fun() -> rs_seq_loop(B, N) end.

rs_seq_loop(_, 0) -> ok;
rs_seq_loop(B, N) -> spawn(B, ?MODULE, noop, []), rs_seq_loop(B, N - 1).

rs_pipelined(B, N) ->
    fun() ->
            Self = self(),
            [erlang:spawn_request(B, ?MODULE, reply, [Self], [{reply, no}])
             || _ <- lists:seq(1, N)],
            collect(N)
    end.

collect(0) -> ok;
collect(N) -> receive spawned_done -> collect(N - 1) end.
