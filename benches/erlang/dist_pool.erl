%% Spawnpool's own Erlang counterpart of the pool-spawn measurement of
%% `benches/src/bin/dist_bench.rs`: OTP's `pool` module, as
%% ../shared/erlang-bench/pool_bench.erl measures it (the reference figure
%% of PERF.md). (Not named pool.erl: that is the OTP module it measures.)
%%
%% This node is the pool master (it is also a pool member, as in OTP).
%% `pool:start/2` starts one slave node per host of `.hosts.erlang` in the
%% current directory (dist_bench writes `'127.0.0.1'.` there) and a second
%% one is started with `slave:start/3` and `pool:attach/1`: three members,
%% each its own OS process, all distributed on 127.0.0.1 only (long names,
%% `inet_dist_use_interface` {127,0,0,1}; epmd is whatever ERL_EPMD_PORT
%% points at). After 3 s (the first load reports are in):
%%
%%   pool_pspawn   pool:pspawn(dist_pool, noop, []) N times from the master:
%%                 each a gen_server call to pool_master (placement on the
%%                 least-loaded node by run queue) which spawns the process
%%                 there and answers with its pid; the processes end at
%%                 once: spawns/s
%%
%% Output: RESULT lines as dist.erl's, INFO lines (versions, OS pids of the
%% slaves, where the last run's spawns went).
%%
%% Arguments key=value: reps, pool_spawns (N), sched (schedulers of the
%% slaves, default 2). The slaves' extra arguments (cookie, interface, code
%% path) come from the environment variable DIST_POOL_SLAVE_ARGS.
-module(dist_pool).
-export([main/1, noop/0]).
-compile([{nowarn_deprecated_function, [{slave, start, 3}]}]).

main(Args) ->
    Opts = maps:merge(#{reps => 5, pool_spawns => 10000, sched => 2},
                      maps:from_list([parse_arg(A) || A <- Args])),
    S = integer_to_list(maps:get(sched, Opts)),
    SlaveArgs = os:getenv("DIST_POOL_SLAVE_ARGS", "") ++ " +S " ++ S ++ ":" ++ S,
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Suffix = os:getpid(),
    Nodes = pool:start(list_to_atom("pool_p1_" ++ Suffix), SlaveArgs),
    {ok, N2} = slave:start(list_to_atom(Host), list_to_atom("pool_p2_" ++ Suffix), SlaveArgs),
    _ = pool:attach(N2),
    Members = pool:get_nodes(),
    [{module, _} = rpc:call(N, code, ensure_loaded, [?MODULE]) || N <- Members, N =/= node()],
    io:format("INFO otp=~s erts=~s master=~w members=~w started=~w schedulers=~w jit=~w~n",
              [erlang:system_info(otp_release), erlang:system_info(version),
               node(), Members, Nodes ++ [N2],
               [{N, rpc:call(N, erlang, system_info, [schedulers_online])} || N <- Members],
               erlang:system_info(emu_flavor) =:= jit]),
    %% One line per slave, for dist_bench to kill it by PID should it
    %% outlive this node.
    [io:format("INFO os_pid ~s ~s~n", [N, rpc:call(N, os, getpid, [])])
     || N <- Members, N =/= node()],
    timer:sleep(3000),
    io:format("INFO loads before: ~w~n", [pool:get_nodes_and_load()]),
    N = maps:get(pool_spawns, Opts),
    Reps = maps:get(reps, Opts),
    Runs = [begin
                T0 = erlang:monotonic_time(nanosecond),
                Pids = pspawn_loop(N, []),
                T1 = erlang:monotonic_time(nanosecond),
                {N / ((T1 - T0) / 1.0e9), Pids}
            end || _ <- lists:seq(1, Reps)],
    {_, LastPids} = lists:last(Runs),
    io:format("INFO pspawn placements (last run): ~w~n", [count_nodes(LastPids)]),
    report("pool_pspawn", "spawns/s", N, [R || {R, _} <- Runs]),
    stopped = pool:stop(),
    erlang:halt(0).

parse_arg(A) ->
    [K, V] = string:split(A, "="),
    {list_to_atom(K), list_to_integer(V)}.

noop() -> ok.

pspawn_loop(0, Acc) -> Acc;
pspawn_loop(N, Acc) -> pspawn_loop(N - 1, [pool:pspawn(?MODULE, noop, []) | Acc]).

count_nodes(Pids) ->
    lists:foldl(fun(P, Acc) -> maps:update_with(node(P), fun(C) -> C + 1 end, 1, Acc) end,
                #{}, Pids).

report(Id, Unit, N, Vals) ->
    S = lists:sort(Vals),
    Med = lists:nth((length(S) + 1) div 2, S),
    io:format("RESULT ~s unit=~s n=~p median=~s min=~s max=~s runs=~s~n",
              [Id, Unit, N, fmt(Med), fmt(hd(S)), fmt(lists:last(S)),
               lists:join(",", [fmt(V) || V <- Vals])]).

fmt(V) -> float_to_list(float(V), [{decimals, 3}, compact]).
