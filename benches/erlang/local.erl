%% Spawnpool's own Erlang counterpart of `benches/src/bin/local_bench.rs`:
%% the same single-node measurements, so that one command prints our figure,
%% Erlang's and the ratio side by side. Modelled on what
%% ../shared/erlang-bench/local_bench.erl measures (the reference figures of
%% PERF.md), plus the restart latency of a supervised child.
%%
%% Measurements (each repeated `reps` times; one RESULT line per figure):
%%   spawn_exit        spawn N processes that exit at once, wait until all
%%                     have exited (process_count back to base): spawns/s
%%   one_way_int       1 sender -> 1 receiver, M messages of the integer 42;
%%                     the receiver counts them and acks at the end: msgs/s
%%   pingpong_rtt_p50  ping-pong with a fresh ponger, 1000 warm-up trips,
%%   pingpong_rtt_p99  then K individually timed round trips: us
%%   idle_mem_total    K processes blocked in `receive`: erlang:memory(total)
%%   idle_mem_procs    and erlang:memory(processes) delta / K: bytes/process
%%   restart_p50       one_for_one supervisor, one permanent child that sends
%%   restart_p99       {started, Pid, T} to the bench when it starts; the bench
%%                     kills it (exit(Pid, kill)) R times and measures kill ->
%%                     replacement running (T of the new child - T of the
%%                     kill): us
%%
%% Output, one line per figure (values in the unit named):
%%   RESULT <id> unit=<u> n=<N> median=<v> min=<v> max=<v> runs=<v1,v2,...>
%%
%% Run (local_bench does this itself; by hand, from this folder):
%%   erlc -o /tmp local.erl
%%   erl -noshell +P 2000000 +S 2:2 -pa /tmp -run local main reps=5
%% Arguments are key=value: reps, spawn, msgs, pp, idle, restarts (the N of
%% each measurement) and parts=spawn,msg,pp,mem,restart (which to run).
-module(local).
-behaviour(supervisor).
-export([main/1, init/1, child_start/1]).

main(Args) ->
    Opts = maps:merge(#{reps => 5, spawn => 1000000, msgs => 10000000,
                        pp => 200000, idle => 100000, restarts => 1000,
                        parts => [spawn, msg, pp, mem, restart]},
                      maps:from_list([parse_arg(A) || A <- Args])),
    io:format("INFO otp=~s erts=~s schedulers=~p schedulers_online=~p "
              "process_limit=~p jit=~p~n",
              [erlang:system_info(otp_release), erlang:system_info(version),
               erlang:system_info(schedulers),
               erlang:system_info(schedulers_online),
               erlang:system_info(process_limit),
               erlang:system_info(emu_flavor) =:= jit]),
    Reps = maps:get(reps, Opts),
    [part(P, Reps, Opts) || P <- maps:get(parts, Opts)],
    erlang:halt(0).

parse_arg(A) ->
    [K, V] = string:split(A, "="),
    case K of
        "parts" -> {parts, [list_to_atom(P) || P <- string:split(V, ",", all)]};
        _ -> {list_to_atom(K), list_to_integer(V)}
    end.

part(spawn, Reps, #{spawn := N}) ->
    rate("spawn_exit", "spawns/s", N, Reps, fun() -> spawn_until_exited(N) end);
part(msg, Reps, #{msgs := M}) ->
    rate("one_way_int", "msgs/s", M, Reps, fun() -> one_way(M, 42) end);
part(pp, Reps, #{pp := K}) ->
    pingpong(K, Reps);
part(mem, Reps, #{idle := K}) ->
    idle_memory(K, Reps);
part(restart, Reps, #{restarts := R}) ->
    restarts(R, Reps).

%% ---------------------------------------------------------------------
%% Reporting

rate(Id, Unit, N, Reps, F) ->
    Rates = [begin
                 erlang:garbage_collect(),
                 T0 = erlang:monotonic_time(nanosecond),
                 F(),
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

%% The K-th (1-based, of a sorted tuple) element for a percentile, with the
%% same index rule as local_bench.rs: median = element(K div 2),
%% p99 = element(K * 99 div 100).
pct(S, P) -> element(max(1, tuple_size(S) * P div 100), S).

wait_procs(Base) ->
    case erlang:system_info(process_count) =< Base of
        true -> ok;
        false -> erlang:yield(), wait_procs(Base)
    end.

%% ---------------------------------------------------------------------
%% Spawn + exit

spawn_loop(0) -> ok;
spawn_loop(N) -> spawn(fun() -> ok end), spawn_loop(N - 1).

spawn_until_exited(N) ->
    Base = erlang:system_info(process_count),
    spawn_loop(N),
    wait_procs(Base).

%% ---------------------------------------------------------------------
%% One-way messages

one_way(N, Msg) ->
    Self = self(),
    R = spawn(fun() -> recv_count(N, Self) end),
    send_loop(N, R, Msg),
    receive {done, R} -> ok end.

send_loop(0, _, _) -> ok;
send_loop(N, R, Msg) -> R ! Msg, send_loop(N - 1, R, Msg).

recv_count(0, From) -> From ! {done, self()};
recv_count(N, From) -> receive _ -> recv_count(N - 1, From) end.

%% ---------------------------------------------------------------------
%% Ping-pong

ponger() -> receive {ping, From} -> From ! pong, ponger(); stop -> ok end.

pingpong(K, Reps) ->
    Res = [begin
               P = spawn(fun ponger/0),
               pp_loop(1000, P),
               Ts = pp_timed(K, P, []),
               P ! stop,
               S = list_to_tuple(lists:sort(Ts)),
               {pct(S, 50) / 1000, pct(S, 99) / 1000}
           end || _ <- lists:seq(1, Reps)],
    report("pingpong_rtt_p50", "us", K, [A || {A, _} <- Res]),
    report("pingpong_rtt_p99", "us", K, [B || {_, B} <- Res]).

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
%% Idle processes blocked in receive

idle() -> receive stop -> ok end.

idle_memory(K, Reps) ->
    Res = [begin
               erlang:garbage_collect(),
               timer:sleep(50),
               Base = erlang:system_info(process_count),
               Tot0 = erlang:memory(total), Pr0 = erlang:memory(processes),
               Ps = [spawn(fun idle/0) || _ <- lists:seq(1, K)],
               timer:sleep(200),
               erlang:garbage_collect(),
               Tot1 = erlang:memory(total), Pr1 = erlang:memory(processes),
               [X ! stop || X <- Ps],
               wait_procs(Base),
               {(Tot1 - Tot0) / K, (Pr1 - Pr0) / K}
           end || _ <- lists:seq(1, Reps)],
    report("idle_mem_total", "bytes/process", K, [A || {A, _} <- Res]),
    report("idle_mem_procs", "bytes/process", K, [B || {_, B} <- Res]).

%% ---------------------------------------------------------------------
%% Restart latency of a crashed child: crash (the kill) -> replacement
%% running (the new child's first act is to report its start time).

%% The supervisor's child_terminated error reports are switched off while
%% this runs (primary logger level critical): our runtime logs nothing at its
%% default level, and with reports on this would time the formatting and
%% printing of R reports instead of the restart.
restarts(R, Reps) ->
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, critical),
    Res = [restart_rep(R) || _ <- lists:seq(1, Reps)],
    ok = logger:set_primary_config(level, Level),
    report("restart_p50", "us", R, [A || {A, _} <- Res]),
    report("restart_p99", "us", R, [B || {_, B} <- Res]).

restart_rep(R) ->
    {ok, Sup} = supervisor:start_link(?MODULE, self()),
    P0 = receive {started, P, _} -> P end,
    P1 = crash_loop(10, P0, []), % warm-up
    {_, Ts} = crash_loop_acc(R, P1, []),
    unlink(Sup),
    Ref = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, process, Sup, _} -> ok end,
    S = list_to_tuple(lists:sort(Ts)),
    {pct(S, 50) / 1000, pct(S, 99) / 1000}.

crash_loop(K, Pid, Acc) ->
    {P, _} = crash_loop_acc(K, Pid, Acc),
    P.

crash_loop_acc(0, Pid, Acc) -> {Pid, Acc};
crash_loop_acc(K, Pid, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    exit(Pid, kill),
    receive
        {started, New, T1} -> crash_loop_acc(K - 1, New, [T1 - T0 | Acc])
    end.

%% The supervisor: one_for_one, intensity high enough for every crash of a
%% run, one permanent worker.
init(Bench) ->
    Flags = #{strategy => one_for_one, intensity => 1000000, period => 1},
    Child = #{id => worker, start => {?MODULE, child_start, [Bench]},
              restart => permanent, shutdown => 5000, type => worker},
    {ok, {Flags, [Child]}}.

child_start(Bench) ->
    {ok, spawn_link(fun() ->
                            Bench ! {started, self(), erlang:monotonic_time(nanosecond)},
                            receive stop -> ok end
                    end)}.
